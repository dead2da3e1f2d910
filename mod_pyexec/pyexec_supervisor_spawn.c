/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor's side of its helpers. Runs in the supervisor process,
 * as httpd's User (keeping CAP_KILL, CAP_SETUID and CAP_SETGID when
 * PyExecUser names another user: pyexec_supervisor_main.c); the child
 * side of pyexec_sup_zygote_start() is the zygote-to-be, which becomes
 * PyExecUser and executes pyexec-helper.
 *
 * Helpers are made by the zygote (pyexec-helper --zygote), which the
 * supervisor starts, as PyExecUser, and talks to over a seqpacket
 * channel: SPAWN (with the helper's listening socket, bound here) goes
 * to it, SPAWNED (the pid) and each new helper's READY or REFUSED come
 * back. Every helper is the supervisor's own child (CLONE_PARENT), so
 * reaping it here tells how it ended, with no pid reuse race.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>

#include "pyexec_private.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_state.h"
#include "pyexec_supervisor_main.h"
#include "pyexec_supervisor_proc.h"

/* More spawns than this at once would only queue in the zygote. */
#define MAX_CONCURRENT_SPAWNS 8

/* --- the zygote ------------------------------------------------------ */

/* "numpy,scipy" for the zygote's --allow, or NULL */
static char *allow_list(apr_pool_t *p)
{
    const apr_array_header_t *a = pyexec_state.conf.allowed;

    return a && a->nelts ? apr_array_pstrcat(p, a, ',') : NULL;
}

void pyexec_sup_zygote_start(pyexec_sup_t *sup)
{
    char *allow = allow_list(sup->pool);
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, sup->s,
                     PYEXEC_LOGNO(00220) "socketpair for the zygote");
        return;
    }
    pid = fork();
    if (pid == 0) {
        static char *const envp[] = {NULL};
        char *argv[] = {"pyexec-helper", "--zygote", "--channel", "3",
                        allow ? "--allow" : NULL, allow, NULL};
        int null = open("/dev/null", O_RDWR);
        struct sigaction dfl;
        int sig, hfd;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (sig = 1; sig < NSIG; sig++) {
            sigaction(sig, &dfl, NULL);
        }
        /* stderr stays: it is httpd's error log. The helper goes by
         * descriptor: its path may not be searchable by User. */
        hfd = fcntl(sup->helper_fd, F_DUPFD, 10);
        if (null < 0 || hfd < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0
            || dup2(sv[1], 3) < 0 || dup2(hfd, 4) < 0) {
            _exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
        }
        syscall(SYS_close_range, 5u, ~0u, 0);
        if (sup->helper_uid != (uid_t)-1
            && (setgroups(0, NULL) != 0 || setgid(sup->helper_gid) != 0
                || setuid(sup->helper_uid) != 0)) {
            dprintf(2, "mod_pyexec: cannot become PyExecUser %u: %s\n",
                    (unsigned)sup->helper_uid, strerror(errno));
            _exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
        }
        syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
        dprintf(2, "mod_pyexec: cannot execute %s: %s\n",
                pyexec_state.conf.helper_path, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, sup->s,
                     PYEXEC_LOGNO(00221) "cannot fork the zygote");
        return;
    }
    pyexec_io_set_nonblock(sv[0]);
    sup->zfd = sv[0];
    sup->zpid = pid;
}

static void zygote_lost(pyexec_sup_t *sup, int status)
{
    int stopping = pyexec_sup_stopping();

    if (sup->zfd >= 0) {
        close(sup->zfd);
        sup->zfd = -1;
    }
    sup->zpid = 0;
    sup->zygote_failures++;
    /* spawns it never answered will never be answered */
    if (pyexec_lock() == APR_SUCCESS) {
        pyexec_reg_drop_unstarted(sup->reg);
        if (!stopping && sup->zygote_failures >= 3) {
            /* no helper will start: workers stop waiting for spares,
             * the status page and the health check say so */
            pyexec_reg_spawn_failing(sup->reg);
        }
        pyexec_unlock();
    }
    /* back off: 0.1 s, 0.2 s, ... up to 10 s, so a broken helper
     * installation cannot spin the machine */
    sup->zygote_retry_at = apr_time_now()
        + apr_time_from_msec(stopping ? 0 : (sup->zygote_failures > 7
                                             ? 10000
                                             : 100 << sup->zygote_failures));
    ap_log_error(APLOG_MARK, stopping ? APLOG_DEBUG : APLOG_ERR, 0, sup->s,
                 PYEXEC_LOGNO(00222) "zygote ended (status 0x%x), "
                 "failure %d", status, sup->zygote_failures);
}

static void unlink_helper_socket(uint32_t slot, uint32_t gen)
{
    char path[108];

    if (pyexec_helper_sockpath(path, sizeof(path), pyexec_state.sockdir,
                               slot, gen) > 0) {
        unlink(path);
    }
}

/* --- helpers that have ended ----------------------------------------- */

/* Helpers and the zygote that have exited. */
void pyexec_sup_reap(pyexec_sup_t *sup)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        pyexec_end_reason_t why;
        int32_t idx;
        uint32_t gen = 0;

        if (pid == sup->zpid) {
            zygote_lost(sup, status);
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == PYEXEC_EXIT_MEMORY) {
            why = PYEXEC_END_MEMORY;
        }
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
            why = PYEXEC_END_TIMEOUT;
        }
        else {
            why = PYEXEC_END_CRASH;
        }
        if (pyexec_lock() != APR_SUCCESS) {
            continue;
        }
        idx = pyexec_reg_find_pid(sup->reg, pid);
        if (idx == PYEXEC_REG_NONE) {
            /* a helper that died before its SPAWNED arrived: remember
             * it, or that late report would bind a dead (and perhaps
             * reused) pid to a slot */
            sup->unknown_reaped[sup->unknown_next++ % 16] = pid;
        }
        if (idx != PYEXEC_REG_NONE) {
            const pyexec_slot_t *s = pyexec_reg_slot(sup->reg, idx);
            int spawning = s->state == PYEXEC_SLOT_SPAWNING;

            gen = s->gen;
            why = pyexec_reg_reaped(sup->reg, idx,
                                    spawning ? PYEXEC_END_SPAWN_FAILED : why);
        }
        pyexec_unlock();
        if (why == PYEXEC_END_SPAWN_FAILED) {
            /* a helper that cannot start (a required sandbox layer
             * missing, a broken install) would fail again at once */
            sup->spawn_failures++;
            if (sup->spawn_failures >= 3 && pyexec_lock() == APR_SUCCESS) {
                /* workers stop waiting for spares that will not come */
                pyexec_reg_spawn_failing(sup->reg);
                pyexec_unlock();
            }
            sup->spawn_retry_at = apr_time_now() + apr_time_from_msec(
                sup->spawn_failures > 7 ? 10000 : 50 << sup->spawn_failures);
        }
        if (idx != PYEXEC_REG_NONE) {
            unlink_helper_socket((uint32_t)idx, gen);
            ap_log_error(APLOG_MARK, why == PYEXEC_END_CRASH
                         || why == PYEXEC_END_SPAWN_FAILED
                         ? APLOG_WARNING : APLOG_DEBUG, 0, sup->s,
                         PYEXEC_LOGNO(00230) "helper %d (slot %d) ended: %s "
                         "(status 0x%x)", (int)pid, (int)idx,
                         pyexec_end_reason_name(why), status);
        }
    }
}

static int reaped_unknown(pyexec_sup_t *sup, pid_t pid)
{
    for (int i = 0; i < 16; i++) {
        if (sup->unknown_reaped[i] == pid) {
            sup->unknown_reaped[i] = 0;
            return 1;
        }
    }
    return 0;
}

/* --- what the zygote and new helpers report -------------------------- */

/* What a container runtime's default seccomp profile takes away: Docker's
 * refuses unshare() and clone() with namespace flags to a process without
 * CAP_SYS_ADMIN, so every namespace is missing at once. (The mount
 * namespace alone missing is AppArmor's docker-default denying mount(),
 * which the profile does not change.) */
#define CONTAINER_BLOCKED_LAYERS (PYEXEC_LAYER_USERNS | PYEXEC_LAYER_NETNS \
                                  | PYEXEC_LAYER_PIDNS)

/* Whether httpd runs in a container (Docker's /.dockerenv, Podman's
 * /run/.containerenv, or the `container` variable systemd-nspawn, LXC
 * and Podman set), where missing namespaces most likely mean the
 * runtime's seccomp profile rather than the kernel. */
static int in_container(void)
{
    static int known = -1;

    if (known < 0) {
        known = access("/.dockerenv", F_OK) == 0
                || access("/run/.containerenv", F_OK) == 0
                || getenv("container") != NULL;
    }
    return known;
}

/* What to add to a line about missing layers: in a container, the way to
 * get them (the README's "Containers"); elsewhere nothing. */
static const char *layers_hint(uint32_t missing)
{
    if (!(missing & CONTAINER_BLOCKED_LAYERS) || !in_container()) {
        return "";
    }
    return "; in a container, namespaces need the seccomp profile "
           "seccomp.json (docker/seccomp.json in the source, "
           "/usr/share/mod_pyexec/seccomp.json in the image): "
           "docker run --security-opt seccomp=seccomp.json "
           "(README, \"Containers\")";
}

/* Say once, and again on any change, which layers confine the helpers
 * and which this host could not give. */
static void log_layers(pyexec_sup_t *sup, uint32_t layers)
{
    char on[200], off[200];
    uint32_t missing = PYEXEC_LAYERS_ALL & ~layers;

    pyexec_layers_format(layers, on, sizeof(on));
    pyexec_layers_format(missing, off, sizeof(off));
    ap_log_error(APLOG_MARK, (missing & PYEXEC_LAYERS_REQUIRED)
                 ? APLOG_WARNING : APLOG_INFO, 0, sup->s,
                 PYEXEC_LOGNO(00231) "sandbox layers active: %s; "
                 "unavailable on this host: %s%s", on,
                 missing ? off : "none", layers_hint(missing));
}

void pyexec_sup_zygote_msgs(pyexec_sup_t *sup)
{
    /* the largest message: a REFUSED with its reason */
    unsigned char buf[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN
                      + PYEXEC_REFUSED_TEXT_MAX];
    ssize_t n;

    while (sup->zfd >= 0
           && (n = recv(sup->zfd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
        pyexec_frame_hdr_t hdr;
        pyexec_slot_msg_t m;
        int stale = 0, layers_changed = 0;

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;              /* EAGAIN; EOF shows up as a reaped zygote */
        }
        if (pyexec_frame_decode_hdr(buf, (size_t)n, sizeof(buf), &hdr)
            != PYEXEC_FRAME_OK
            || hdr.length != (size_t)n - PYEXEC_FRAME_HDR_LEN
            || hdr.length < PYEXEC_SLOT_MSG_LEN
            || pyexec_slot_msg_decode(buf + PYEXEC_FRAME_HDR_LEN,
                                      PYEXEC_SLOT_MSG_LEN, &m) != 0) {
            continue;
        }
        if (hdr.type == PYEXEC_MSG_REFUSED) {
            uint32_t lacking = PYEXEC_LAYERS_ALL & ~m.reason;
            char missing[200];

            pyexec_layers_format(lacking, missing, sizeof(missing));
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, sup->s,
                         PYEXEC_LOGNO(00233) "helper for slot %u refusing to "
                         "serve (PyExecRequireSandbox): %.*s; layers missing "
                         "on this host: %s%s", m.slot,
                         (int)(hdr.length - PYEXEC_SLOT_MSG_LEN),
                         (const char *)buf + PYEXEC_FRAME_HDR_LEN
                         + PYEXEC_SLOT_MSG_LEN, missing,
                         layers_hint(lacking));
            continue;           /* it exits; the reaper frees the slot */
        }
        if (pyexec_lock() != APR_SUCCESS) {
            continue;
        }
        if (hdr.type == PYEXEC_MSG_SPAWNED && m.pid <= 0) {
            /* the fork failed: free the slot, if it is still this spawn */
            pyexec_reg_end(sup->reg, (int32_t)m.slot, m.gen,
                           PYEXEC_END_SPAWN_FAILED);
        }
        else if (hdr.type == PYEXEC_MSG_SPAWNED && reaped_unknown(sup, m.pid)) {
            /* it is gone already: the spawn failed */
            pyexec_reg_end(sup->reg, (int32_t)m.slot, m.gen,
                           PYEXEC_END_SPAWN_FAILED);
        }
        else if (hdr.type == PYEXEC_MSG_SPAWNED) {
            stale = pyexec_reg_spawn_pid(sup->reg, (int32_t)m.slot, m.gen,
                                         m.pid) != 0;
        }
        else if (hdr.type == PYEXEC_MSG_READY) {
            stale = pyexec_reg_spawn_ready(sup->reg, (int32_t)m.slot, m.gen,
                                           m.pid) != 0;
            if (!stale) {
                sup->zygote_failures = 0;
                sup->spawn_failures = 0;
                layers_changed = pyexec_reg_spawn_healthy(sup->reg, m.reason);
            }
        }
        pyexec_unlock();
        if (hdr.type == PYEXEC_MSG_READY && !stale) {
            pyexec_sup_cpu_ready(sup, m.slot, m.gen, m.pid);
        }
        /* a helper nobody waits for any more: it is our child (so its
         * pid cannot have been reused before we reap it), end it */
        if (stale && m.pid > 0) {
            kill(m.pid, SIGKILL);
        }
        if (layers_changed) {
            log_layers(sup, m.reason);
        }
    }
}

/* --- new helpers ----------------------------------------------------- */

/* The helper's listening socket, bound here so that the socket file
 * belongs to httpd's User (whom the workers run as) whatever user the
 * helper runs as. */
static int helper_socket(uint32_t slot, uint32_t gen)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (pyexec_helper_sockpath(sa.sun_path, sizeof(sa.sun_path),
                               pyexec_state.sockdir, slot, gen) < 0) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || chmod(sa.sun_path, 0600) != 0 || listen(fd, 64) != 0) {
        close(fd);
        unlink(sa.sun_path);
        return -1;
    }
    return fd;
}

/* Keep PyExecSpareHelpers ready, as far as the table has room. */
void pyexec_sup_refill(pyexec_sup_t *sup)
{
    const pyexec_settings_t *c = sup->conf;
    /* the limits new sessions keep, whatever a graceful restart brings
     * meanwhile */
    pyexec_slot_limits_t limits = {
        .timeout = c->timeout, .max_output = c->spawn.max_output,
        .max_display = c->spawn.max_display, .max_code = c->spawn.max_code, .conf_gen = c->gen,
    };
    pyexec_spawn_t todo[MAX_CONCURRENT_SPAWNS];
    int n = 0, i, lfd;
    int64_t now = pyexec_now_usec();

    if (sup->zfd < 0 || apr_time_now() < sup->spawn_retry_at) {
        return;
    }
    if (pyexec_lock() != APR_SUCCESS) {
        return;
    }
    for (;;) {
        pyexec_registry_t *r = sup->reg;
        uint32_t pending = r->count[PYEXEC_SLOT_SPARE]
                           + r->count[PYEXEC_SLOT_SPAWNING];
        uint32_t busy = r->count[PYEXEC_SLOT_LIVE] + pending;
        pyexec_spawn_t *sp = &todo[n];
        int32_t idx;

        if (pending >= c->spare_helpers
            || r->count[PYEXEC_SLOT_SPAWNING] >= MAX_CONCURRENT_SPAWNS
            || busy >= c->max_sessions + c->spare_helpers
            || n >= MAX_CONCURRENT_SPAWNS) {
            break;
        }
        *sp = c->spawn;
        /* a fresh secret per helper: the socket file's permissions are
         * all other programs of User would otherwise meet */
        if (getrandom(sp->token, PYEXEC_TOKEN_LEN, 0) != PYEXEC_TOKEN_LEN) {
            break;
        }
        idx = pyexec_reg_spawn_begin(r, now, &limits, sp->token);
        if (idx == PYEXEC_REG_NONE) {
            break;
        }
        sp->slot = (uint32_t)idx;
        sp->gen = pyexec_reg_slot(r, idx)->gen;
        n++;
    }
    pyexec_unlock();

    for (i = 0; i < n; i++) {
        size_t len = pyexec_spawn_frame(sup->spawn_frame,
                                        PYEXEC_SPAWN_FRAME_MAX, &todo[i],
                                        c->blocked, c->names_len);

        lfd = helper_socket(todo[i].slot, todo[i].gen);
        if (lfd < 0 || !len
            || pyexec_io_send_fd(sup->zfd, sup->spawn_frame, len, lfd) != 0) {
            if (lfd < 0) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, sup->s,
                             PYEXEC_LOGNO(00224) "cannot create a helper "
                             "socket in %s", pyexec_state.sockdir);
            }
            else {
                unlink_helper_socket(todo[i].slot, todo[i].gen);
            }
            if (pyexec_lock() == APR_SUCCESS) {
                pyexec_reg_reaped(sup->reg, (int32_t)todo[i].slot,
                                  PYEXEC_END_SPAWN_FAILED);
                pyexec_unlock();
            }
        }
        if (lfd >= 0) {
            close(lfd);         /* the zygote has its own copy now */
        }
    }
}
