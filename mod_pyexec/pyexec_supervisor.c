/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * What httpd's processes call of the supervisor. Runs in two kinds of
 * process:
 *   httpd's parent (as root; post_config and other-child maintenance):
 *       start the supervisor, watch it and start it again should it die,
 *       stop it, hand a kept one the new error log and settings;
 *   httpd's workers (as User):
 *       fire-and-forget datagrams asking for a refill or a kill.
 * The supervisor process itself is pyexec_supervisor_main.c.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <ap_mpm.h>
#include <http_core.h>

#include "pyexec_private.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_state.h"
#include "pyexec_supervisor.h"
#include "pyexec_supervisor_main.h"

/* --- httpd's parent: start, watch, restart, stop --------------------- */

/* Other-child maintenance gets no pool or server of ours: kept here.
 * All of it is the parent's, set anew by each generation's post_config. */
static apr_pool_t *sup_parent_pool;
static server_rec *sup_parent_server;
static int *sup_log_chan;       /* the parent's end, in retained data */

void pyexec_supervisor_stop(apr_proc_t *proc)
{
    int i;

    if (proc->pid <= 0) {
        return;
    }
    kill(proc->pid, SIGTERM);
    for (i = 0; i < 300; i++) {
        if (waitpid(proc->pid, NULL, WNOHANG) != 0) {
            break;
        }
        usleep(10000);
    }
    if (i == 300) {
        kill(proc->pid, SIGKILL);
        waitpid(proc->pid, NULL, 0);
    }
    proc->pid = -1;
}

static void maintenance(int reason, void *data, apr_wait_t status)
{
    apr_proc_t *proc = data;
    int mpm_state, stopping;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        /* already reaped: keep the unregister below from signalling a
         * pid that may belong to someone else by now */
        proc->pid = -1;
        apr_proc_other_child_unregister(data);
        stopping = 1;
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state != AP_MPMQ_STOPPING) {
            stopping = 0;
        }
        if (reason == APR_OC_REASON_DEATH && WIFEXITED(status)
            && WEXITSTATUS(status) == PYEXEC_SUPERVISOR_STARTUP_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sup_parent_server,
                         PYEXEC_LOGNO(00201) "supervisor could not start "
                         "(see above); not restarting it, /execute will "
                         "answer 503");
            break;
        }
        if (!stopping) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, sup_parent_server,
                         PYEXEC_LOGNO(00202) "supervisor died (status %d); "
                         "its sessions are lost, starting a new one",
                         status);
            pyexec_supervisor_start(sup_parent_pool, sup_parent_server,
                                    proc, sup_log_chan);
        }
        break;
    case APR_OC_REASON_RESTART:
        /* The MPM reclaims its children, others included, on a restart
         * (-k restart) and on a stop, never on a graceful restart: end
         * the supervisor and wait, so that the next generation starts on
         * a clean socket dir. */
        pyexec_supervisor_stop(proc);
        apr_proc_other_child_unregister(data);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* The end of this generation's configuration. On a graceful
         * restart the supervisor and its sessions live on into the next
         * one (pyexec_shared.c); when httpd's parent exits (a graceful
         * stop does not reclaim other children) it ends with it. */
        if (proc->pid > 0
            && ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING) {
            pyexec_supervisor_stop(proc);
        }
        break;
    default:
        break;
    }
}

void pyexec_supervisor_watch(apr_pool_t *pconf, server_rec *s,
                             apr_proc_t *proc, int *log_chan)
{
    sup_parent_pool = pconf;
    sup_parent_server = s;
    sup_log_chan = log_chan;
    apr_proc_other_child_register(proc, maintenance, proc, NULL, pconf);
}

/* A kept supervisor, and its zygote, still write to the error log httpd
 * had when it was started; after a graceful restart (which is how log
 * rotation reopens logs) they get the new one. */
void pyexec_supervisor_send_log(int log_chan, server_rec *s)
{
    unsigned char hdr[PYEXEC_FRAME_HDR_LEN];
    apr_os_file_t fd;

    if (log_chan < 0 || !s->error_log
        || apr_os_file_get(&fd, s->error_log) != APR_SUCCESS) {
        return;                 /* syslog: nothing to hand over */
    }
    pyexec_frame_encode_hdr(hdr, PYEXEC_MSG_LOGFD, 0, 0);
    pyexec_io_send_fd(log_chan, hdr, sizeof(hdr), fd);
}

apr_status_t pyexec_supervisor_start(apr_pool_t *pconf, server_rec *s,
                                     apr_proc_t *proc, int *log_chan)
{
    apr_status_t rv;
    pid_t httpd_pid = getpid();
    int sv[2];

    proc->pid = -1;
    /* not registered with any pool: it outlives generations */
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
        sv[0] = sv[1] = -1;
    }
    if (*log_chan >= 0) {
        close(*log_chan);
    }
    *log_chan = sv[0];
    rv = apr_proc_fork(proc, pconf);
    if (rv == APR_INCHILD) {
        if (sv[0] >= 0) {
            close(sv[0]);
        }
        pyexec_supervisor_main(s, pconf, sv[1], httpd_pid);
    }
    if (sv[1] >= 0) {
        close(sv[1]);
    }
    if (rv != APR_INPARENT) {
        proc->pid = -1;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00203) "cannot fork the supervisor");
        return rv;
    }
    pyexec_supervisor_watch(pconf, s, proc, log_chan);
    return APR_SUCCESS;
}

void pyexec_supervisor_nudge(const apr_proc_t *proc)
{
    /* our own unreaped child: no pid reuse; a signal rather than a
     * datagram, which root would send to a path in a directory User
     * owns */
    if (proc->pid > 0) {
        kill(proc->pid, SIGUSR2);
    }
}

/* --- httpd's workers: datagrams -------------------------------------- */

static void send_ctl(uint16_t type, const void *payload, size_t len)
{
    unsigned char msg[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN];
    struct sockaddr_un sa;

    if (pyexec_state.ctl_fd < 0 || len > PYEXEC_SLOT_MSG_LEN) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    apr_cpystrn(sa.sun_path, pyexec_state.ctl_path, sizeof(sa.sun_path));
    pyexec_frame_encode_hdr(msg, type, 0, (uint32_t)len);
    if (len) {
        memcpy(msg + PYEXEC_FRAME_HDR_LEN, payload, len);
    }
    /* non-blocking: for a WAKE a full queue means the supervisor is
     * awake anyway; a KILL is worth a few retries (and the supervisor's
     * scan kills whatever a worker ended, should one still be lost) */
    for (int tries = 0; tries < (type == PYEXEC_MSG_KILL ? 20 : 1); tries++) {
        if (sendto(pyexec_state.ctl_fd, msg, PYEXEC_FRAME_HDR_LEN + len,
                   MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
                   sizeof(sa)) >= 0 || errno != EAGAIN) {
            break;
        }
        apr_sleep(1000);
    }
}

void pyexec_supervisor_wake(void)
{
    send_ctl(PYEXEC_MSG_WAKE, NULL, 0);
}

void pyexec_supervisor_kill(int32_t slot, uint32_t gen, int reason)
{
    unsigned char body[PYEXEC_SLOT_MSG_LEN];
    pyexec_slot_msg_t m;

    m.slot = (uint32_t)slot;
    m.gen = gen;
    m.pid = 0;
    m.reason = (uint32_t)reason;
    pyexec_slot_msg_encode(body, &m);
    send_ctl(PYEXEC_MSG_KILL, body, sizeof(body));
}

/* Called in httpd's parent at every start and restart, without the
 * registry lock (pyexec_settings.h). */
apr_status_t pyexec_supervisor_publish_conf(apr_pool_t *ptemp,
                                            const pyexec_conf_t *c,
                                            pyexec_settings_t *live)
{
    pyexec_settings_t *st = apr_pcalloc(ptemp, sizeof(*st));
    int i;

    for (i = 0; i < c->blocked->nelts; i++) {
        if (pyexec_settings_block(st, APR_ARRAY_IDX(c->blocked, i,
                                                    const char *)) != 0) {
            return APR_ENOSPC;
        }
    }
    st->spawn.memory_limit = (uint64_t)c->memory_limit;
    st->spawn.max_output = (uint32_t)c->max_output;
    st->spawn.max_display = (uint32_t)c->max_display;
    st->spawn.max_code = (uint32_t)c->max_code;
    /* CPU backstop: far above what the wall clock allows per run, yet
     * bounded for a session that is busy on every request */
    st->spawn.cpu_seconds = 600;
    st->spawn.flags = (c->require_sandbox ? PYEXEC_SPAWN_REQUIRE_SANDBOX : 0)
                      | (c->no_import_hook ? PYEXEC_SPAWN_NO_IMPORT_HOOK : 0)
                      | (uint32_t)c->skip_layers;
    st->spare_helpers = (uint32_t)c->spare_helpers;
    st->max_sessions = (uint32_t)c->max_sessions;
    st->idle_timeout = c->idle_timeout;
    st->timeout = c->timeout;
    pyexec_settings_publish(live, st);
    return APR_SUCCESS;
}
