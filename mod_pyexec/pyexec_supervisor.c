/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <ap_listen.h>
#include <ap_mpm.h>
#include <http_core.h>
#include <mpm_common.h>
#include <unixd.h>

#include <linux/capability.h>

#include "pyexec_private.h"
#include "pyexec_supervisor.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"

/* Exit status that tells the parent not to restart us: the
 * configuration is at fault and a restart would fail the same way. */
#define SUPERVISOR_STARTUP_ERROR 254

#define SCAN_INTERVAL_MS      200
/* A worker kills its own overdue execution; this is the backstop for a
 * worker that is gone. */
#define DEADLINE_BACKSTOP_US  (500 * 1000)
#define SPAWN_TIMEOUT_US      (30 * 1000 * 1000)
#define MAX_CONCURRENT_SPAWNS 8

typedef struct {
    server_rec *s;
    apr_pool_t *pool;
    pyexec_registry_t *reg;
    int ctl_fd;             /* datagrams from workers */
    int zfd;                /* our end of the zygote channel */
    pid_t zpid;
    int helper_fd;          /* the helper program, opened before setuid */
    apr_time_t zygote_retry_at;
    int zygote_failures;
    apr_time_t spawn_retry_at;  /* helpers failing to start: back off */
    int spawn_failures;
    pyexec_live_conf_t *conf;   /* our copy of the published settings */
    pyexec_live_conf_t *conf_next;  /* a copy being checked (take_conf) */
    int log_fd;                 /* httpd's parent sends its error log here */
    pid_t unknown_reaped[16];   /* children reaped before the zygote's
                                   SPAWNED named them (ring) */
    unsigned unknown_next;
    uid_t helper_uid;           /* (uid_t)-1: run helpers as we run */
    gid_t helper_gid;
} sup_t;

static volatile sig_atomic_t sup_stop;
static int sig_pipe[2] = {-1, -1};

/* --- parent side: start, watch, restart ------------------------------ */

static apr_pool_t *sup_parent_pool;
static server_rec *sup_parent_server;
static pid_t sup_httpd_pid;
static int *sup_log_chan;       /* the parent's end, in retained data */
static int sup_log_child = -1;  /* the supervisor's end, across fork */

static void supervisor_main(server_rec *s, apr_pool_t *p)
    __attribute__((noreturn));

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
            && WEXITSTATUS(status) == SUPERVISOR_STARTUP_ERROR) {
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
    int sv[2];

    proc->pid = -1;
    sup_httpd_pid = getpid();
    /* not registered with any pool: it outlives generations */
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
        sv[0] = sv[1] = -1;
    }
    if (*log_chan >= 0) {
        close(*log_chan);
    }
    *log_chan = sv[0];
    sup_log_child = sv[1];
    rv = apr_proc_fork(proc, pconf);
    if (rv == APR_INCHILD) {
        if (sv[0] >= 0) {
            close(sv[0]);
        }
        supervisor_main(s, pconf);
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

/* --- worker side: datagrams ------------------------------------------ */

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

void pyexec_supervisor_nudge(const apr_proc_t *proc)
{
    /* our own unreaped child: no pid reuse; a signal rather than a
     * datagram, which root would send to a path in a directory User
     * owns */
    if (proc->pid > 0) {
        kill(proc->pid, SIGUSR2);
    }
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

/* --- the supervisor process ------------------------------------------ */

static void on_stop(int sig)
{
    int e = errno;
    (void)sig;

    sup_stop = 1;
    if (write(sig_pipe[1], "s", 1) < 0) {
        /* the pipe is full: we will wake up anyway */
    }
    errno = e;
}

static void on_child(int sig)
{
    int e = errno;
    (void)sig;

    if (write(sig_pipe[1], "c", 1) < 0) {
        /* as above */
    }
    errno = e;
}

static void set_signals(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    /* from httpd's parent: new settings are published (take_conf) */
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_flags = 0;
    sa.sa_handler = SIG_IGN;
    /* httpd's restart signals are for the parent; it tells us itself */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(AP_SIG_GRACEFUL_STOP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Remove sockets a previous supervisor left behind. */
static void clear_sockdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".sock")) {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
}

static int prepare_sockdir(sup_t *sup)
{
    const char *dir = pyexec_state.sockdir;
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, sup->s,
                     PYEXEC_LOGNO(00210) "cannot create PyExecSocketDir %s",
                     dir);
        return -1;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, sup->s,
                     PYEXEC_LOGNO(00211) "PyExecSocketDir %s is not a "
                     "directory", dir);
        return -1;
    }
    if (geteuid() == 0) {
        /* workers and helpers run as User and meet here; nobody else
         * may even look */
        if (chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0
            || chmod(dir, 0700) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, sup->s,
                         PYEXEC_LOGNO(00212) "cannot hand %s to User", dir);
            return -1;
        }
    }
    clear_sockdir(dir);
    return 0;
}

static int open_ctl(sup_t *sup)
{
    struct sockaddr_un sa;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(pyexec_state.ctl_path) >= sizeof(sa.sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sup->s,
                     PYEXEC_LOGNO(00213) "socket path %s is too long; set a "
                     "shorter PyExecSocketDir", pyexec_state.ctl_path);
        return -1;
    }
    strcpy(sa.sun_path, pyexec_state.ctl_path);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, sup->s,
                     PYEXEC_LOGNO(00214) "cannot bind %s", sa.sun_path);
        close(fd);
        return -1;
    }
    /* the kernel tells us who sent each datagram */
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
    /* as User already (see supervisor_main): in a directory User owns, a
     * path can be swapped for a symbolic link, so nothing here may act on
     * a path with root's rights */
    chmod(sa.sun_path, 0600);
    sup->ctl_fd = fd;
    return 0;
}

/* Called in httpd's parent at every start and restart, without the
 * registry lock (see take_conf). The SPAWN frame is the same for every helper but for slot and
 * gen, so it is built here once. */
apr_status_t pyexec_supervisor_publish_conf(const pyexec_conf_t *c,
                                            pyexec_live_conf_t *live)
{
    pyexec_spawn_t sp;
    size_t len = PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN, off;
    int i;

    for (i = 0; i < c->blocked->nelts; i++) {
        len += strlen(APR_ARRAY_IDX(c->blocked, i, const char *)) + 1;
    }
    if (len > sizeof(live->spawn)) {
        return APR_ENOSPC;
    }
    /* a sequence lock (take_conf): odd while the body changes */
    __atomic_store_n(&live->gen, live->gen + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memset(&sp, 0, sizeof(sp));
    sp.memory_limit = (uint64_t)c->memory_limit;
    sp.max_output = (uint32_t)c->max_output;
    sp.max_code = (uint32_t)c->max_code;
    /* CPU backstop: far above what the wall clock allows per run, yet
     * bounded for a session that is busy on every request */
    sp.cpu_seconds = 600;
    sp.flags = (c->require_sandbox ? PYEXEC_SPAWN_REQUIRE_SANDBOX : 0)
               | (c->no_import_hook ? PYEXEC_SPAWN_NO_IMPORT_HOOK : 0)
               | (uint32_t)c->skip_layers;
    pyexec_frame_encode_hdr(live->spawn, PYEXEC_MSG_SPAWN, 0,
                            (uint32_t)(len - PYEXEC_FRAME_HDR_LEN));
    pyexec_spawn_encode(live->spawn + PYEXEC_FRAME_HDR_LEN, &sp);
    off = PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN;
    for (i = 0; i < c->blocked->nelts; i++) {
        const char *n = APR_ARRAY_IDX(c->blocked, i, const char *);
        size_t l = strlen(n) + 1;
        memcpy(live->spawn + off, n, l);
        off += l;
    }
    live->spawn_len = (uint32_t)len;
    live->spare_helpers = (uint32_t)c->spare_helpers;
    live->max_sessions = (uint32_t)c->max_sessions;
    live->idle_timeout = c->idle_timeout;
    live->timeout = c->timeout;
    live->max_output = (uint32_t)c->max_output;
    live->max_code = (uint32_t)c->max_code;
    __atomic_store_n(&live->gen, live->gen + 1, __ATOMIC_RELEASE);
    return APR_SUCCESS;
}


/* Take up settings published since we last looked; 1 if there were new
 * ones (scan then replaces the spares made with the old). httpd's parent
 * writes them without the registry lock (a lock a stuck worker could
 * hold must not stall a restart), as a sequence lock: gen is odd while
 * it writes and changes when it is done; we copy and check that gen was
 * the same even number before and after. */
static int take_conf(sup_t *sup)
{
    pyexec_live_conf_t *live = pyexec_state.live, *swap;
    uint32_t before = __atomic_load_n(&live->gen, __ATOMIC_ACQUIRE);

    if (before == sup->conf->gen || (before & 1)) {
        return 0;               /* nothing new, or being written */
    }
    memcpy(sup->conf_next, live, sizeof(*sup->conf_next));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&live->gen, __ATOMIC_RELAXED) != before) {
        return 0;               /* torn: again next time round */
    }
    sup->conf_next->gen = before;
    swap = sup->conf;
    sup->conf = sup->conf_next;
    sup->conf_next = swap;
    return 1;
}

/* "numpy,scipy" for the zygote's --allow, or NULL */
static char *allow_list(apr_pool_t *p)
{
    const apr_array_header_t *a = pyexec_state.conf.allowed;

    return a && a->nelts ? apr_array_pstrcat(p, a, ',') : NULL;
}

static void zygote_start(sup_t *sup)
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
            _exit(SUPERVISOR_STARTUP_ERROR);
        }
        syscall(SYS_close_range, 5u, ~0u, 0);
        if (sup->helper_uid != (uid_t)-1
            && (setgroups(0, NULL) != 0 || setgid(sup->helper_gid) != 0
                || setuid(sup->helper_uid) != 0)) {
            dprintf(2, "mod_pyexec: cannot become PyExecUser %u: %s\n",
                    (unsigned)sup->helper_uid, strerror(errno));
            _exit(SUPERVISOR_STARTUP_ERROR);
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
    set_nonblock(sv[0]);
    sup->zfd = sv[0];
    sup->zpid = pid;
}

static void zygote_lost(sup_t *sup, int status)
{
    if (sup->zfd >= 0) {
        close(sup->zfd);
        sup->zfd = -1;
    }
    sup->zpid = 0;
    sup->zygote_failures++;
    /* spawns it never answered will never be answered */
    if (pyexec_lock() == APR_SUCCESS) {
        uint32_t i;

        for (i = 0; i < sup->reg->nslots; i++) {
            pyexec_slot_t *s = pyexec_reg_slot(sup->reg, (int32_t)i);

            if (s->state == PYEXEC_SLOT_SPAWNING && s->pid == 0) {
                pyexec_reg_end(sup->reg, (int32_t)i, s->gen,
                               PYEXEC_END_SPAWN_FAILED);
            }
        }
        pyexec_unlock();
    }
    /* back off: 0.1 s, 0.2 s, ... up to 10 s, so a broken helper
     * installation cannot spin the machine */
    sup->zygote_retry_at = apr_time_now()
        + apr_time_from_msec(sup_stop ? 0 : (sup->zygote_failures > 7
                                             ? 10000
                                             : 100 << sup->zygote_failures));
    ap_log_error(APLOG_MARK, sup_stop ? APLOG_DEBUG : APLOG_ERR, 0, sup->s,
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

/* Helpers and the zygote that have exited. */
static void reap(sup_t *sup)
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
            pyexec_slot_t *s = pyexec_reg_slot(sup->reg, idx);
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
                sup->reg->helpers_failing = 1;
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

static int reaped_unknown(sup_t *sup, pid_t pid)
{
    for (int i = 0; i < 16; i++) {
        if (sup->unknown_reaped[i] == pid) {
            sup->unknown_reaped[i] = 0;
            return 1;
        }
    }
    return 0;
}

/* Say once, and again on any change, which layers confine the helpers
 * and which this host could not give. */
static void log_layers(sup_t *sup, uint32_t layers)
{
    char on[200], off[200];
    uint32_t missing = PYEXEC_LAYERS_ALL & ~layers;

    pyexec_layers_format(layers, on, sizeof(on));
    pyexec_layers_format(missing, off, sizeof(off));
    ap_log_error(APLOG_MARK, (missing & PYEXEC_LAYERS_REQUIRED)
                 ? APLOG_WARNING : APLOG_INFO, 0, sup->s,
                 PYEXEC_LOGNO(00231) "sandbox layers active: %s; "
                 "unavailable on this host: %s", on,
                 missing ? off : "none");
}

static void handle_zygote_msgs(sup_t *sup)
{
    unsigned char buf[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN + 520];
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
            char missing[200];

            pyexec_layers_format(PYEXEC_LAYERS_ALL & ~m.reason, missing,
                                 sizeof(missing));
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, sup->s,
                         PYEXEC_LOGNO(00233) "helper for slot %u refusing to "
                         "serve (PyExecRequireSandbox): %.*s; layers missing "
                         "on this host: %s", m.slot,
                         (int)(hdr.length - PYEXEC_SLOT_MSG_LEN),
                         (const char *)buf + PYEXEC_FRAME_HDR_LEN
                         + PYEXEC_SLOT_MSG_LEN, missing);
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
                sup->reg->helpers_failing = 0;
                if (sup->reg->sandbox_layers != m.reason) {
                    sup->reg->sandbox_layers = m.reason;
                    layers_changed = 1;
                }
            }
        }
        pyexec_unlock();
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

/* The parent of pid, from /proc (the name in parentheses may hold
 * anything, so parse after its last ')'). -1 if unknown. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *p;
    int ppid = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (pyexec_read_small_file(path, buf, sizeof(buf)) < 0
        || !(p = strrchr(buf, ')'))
        || sscanf(p + 1, " %*c %d", &ppid) != 1) {
        return -1;
    }
    return (pid_t)ppid;
}

/* Who sent a datagram: the kernel's word, not the sender's. */
static pid_t recv_ctl(int fd, unsigned char *buf, size_t len, ssize_t *n)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {buf, len};
    struct msghdr msg;
    struct cmsghdr *cm;
    pid_t sender = -1;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof(control.space);
    *n = recvmsg(fd, &msg, MSG_DONTWAIT);
    for (cm = *n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;

            memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
            sender = cred.pid;
        }
    }
    return sender;
}

static void handle_ctl_msgs(sup_t *sup)
{
    unsigned char buf[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN + 16];
    ssize_t n;
    pid_t sender;

    while ((sender = recv_ctl(sup->ctl_fd, buf, sizeof(buf), &n)), n > 0) {
        pyexec_frame_hdr_t hdr;
        pyexec_slot_msg_t m;
        int32_t pid = 0, forged;

        if (pyexec_frame_decode_hdr(buf, (size_t)n, PYEXEC_SLOT_MSG_LEN, &hdr)
            != PYEXEC_FRAME_OK || hdr.type != PYEXEC_MSG_KILL
            || pyexec_slot_msg_decode(buf + PYEXEC_FRAME_HDR_LEN,
                                      (size_t)n - PYEXEC_FRAME_HDR_LEN,
                                      &m) != 0
            || m.reason == PYEXEC_END_NONE || m.reason >= PYEXEC_END_NREASONS) {
            continue;           /* WAKE, or junk: either way, refill */
        }
        if (pyexec_lock() != APR_SUCCESS) {
            continue;
        }
        /* only httpd's workers (children of httpd's parent, like us) may
         * end sessions: never a helper, the zygote, or another program
         * that happens to run as User */
        forged = sender <= 0 || sender == sup->zpid
                 || pyexec_reg_find_pid(sup->reg, sender) != PYEXEC_REG_NONE
                 || parent_of(sender) != getppid();
        if (!forged) {
            pid = pyexec_reg_end(sup->reg, (int32_t)m.slot, m.gen,
                                 (pyexec_end_reason_t)m.reason);
            if (!pid) {
                /* already ended by the worker: DYING, kill it anyway */
                pyexec_slot_t *s = pyexec_reg_slot(sup->reg, (int32_t)m.slot);
                if (s && s->gen == m.gen && s->state == PYEXEC_SLOT_DYING) {
                    pid = s->pid;
                }
            }
        }
        pyexec_unlock();
        if (forged) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sup->s,
                         PYEXEC_LOGNO(00232) "ignored a KILL for slot %u "
                         "from pid %d, which is not an httpd worker",
                         m.slot, (int)sender);
            continue;
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
        }
    }
}

/* Idle sessions, overdue executions whose worker is gone, spawns that
 * never became ready. */
static void scan(sup_t *sup)
{
    int32_t victims[64];
    int nv = 0;
    uint32_t i, running = 0;
    int64_t now = pyexec_now_usec();

    if (pyexec_lock() != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < sup->reg->nslots && nv < 64; i++) {
        pyexec_slot_t *s = pyexec_reg_slot(sup->reg, (int32_t)i);
        int32_t pid = 0;

        if (s->state == PYEXEC_SLOT_LIVE) {
            running += s->inflight;
        }

        if (s->state == PYEXEC_SLOT_LIVE && s->inflight == 0
            && now - s->last_use > sup->conf->idle_timeout) {
            pid = pyexec_reg_end(sup->reg, (int32_t)i, s->gen,
                                 PYEXEC_END_IDLE);
        }
        else if (s->state == PYEXEC_SLOT_LIVE && s->inflight > 0
                 && s->deadline && now > s->deadline + DEADLINE_BACKSTOP_US) {
            pid = pyexec_reg_end(sup->reg, (int32_t)i, s->gen,
                                 PYEXEC_END_TIMEOUT);
        }
        else if (s->state == PYEXEC_SLOT_SPAWNING
                 && now - s->spawned_at > SPAWN_TIMEOUT_US) {
            pid = pyexec_reg_end(sup->reg, (int32_t)i, s->gen,
                                 PYEXEC_END_SPAWN_FAILED);
        }
        else if (s->state == PYEXEC_SLOT_SPARE
                 && s->conf_gen != sup->conf->gen) {
            /* made with settings older than ours (take_conf): the refill
             * makes new ones; live sessions keep what they started with.
             * One that was starting when they changed goes once ready. */
            pid = pyexec_reg_end(sup->reg, (int32_t)i, s->gen,
                                 PYEXEC_END_EVICTED);
        }
        else if (s->state == PYEXEC_SLOT_DYING && s->pid > 0) {
            /* ended by a worker whose KILL we may never have received
             * (datagrams can be dropped): it is still our unreaped
             * child, so signalling it again is safe */
            pid = s->pid;
        }
        if (pid > 0) {
            victims[nv++] = pid;
        }
    }
    /* Workers count runs in and out themselves; one whose process died
     * mid-request never counts out, and the count only steers their
     * spinning (pyexec_handler.c), so it is set right here now and then.
     * Counted out later, a run of a session ended meanwhile leaves it
     * low for a moment, never high. */
    if (i == sup->reg->nslots) {
        sup->reg->running = running;
    }
    pyexec_unlock();
    while (nv > 0) {
        kill(victims[--nv], SIGKILL);
    }
}

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

static int send_spawn(sup_t *sup, int lfd)
{
    return pyexec_io_send_fd(sup->zfd, sup->conf->spawn,
                             sup->conf->spawn_len, lfd);
}

/* Keep PyExecSpareHelpers ready, as far as the table has room. */
static void refill(sup_t *sup)
{
    const pyexec_live_conf_t *c = sup->conf;
    int32_t todo[MAX_CONCURRENT_SPAWNS];
    uint32_t gens[MAX_CONCURRENT_SPAWNS];
    uint8_t tokens[MAX_CONCURRENT_SPAWNS][PYEXEC_TOKEN_LEN];
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
        int32_t idx;

        if (pending >= c->spare_helpers
            || r->count[PYEXEC_SLOT_SPAWNING] >= MAX_CONCURRENT_SPAWNS
            || busy >= c->max_sessions + c->spare_helpers
            || n >= MAX_CONCURRENT_SPAWNS) {
            break;
        }
        idx = pyexec_reg_spawn_begin(r, now);
        if (idx == PYEXEC_REG_NONE) {
            break;
        }
        /* a fresh secret per helper: the socket file's permissions are
         * all other programs of User would otherwise meet */
        if (getrandom(pyexec_reg_slot(r, idx)->token, PYEXEC_TOKEN_LEN, 0)
            != PYEXEC_TOKEN_LEN) {
            pyexec_reg_reaped(r, idx, PYEXEC_END_SPAWN_FAILED);
            break;
        }
        /* the limits this session will keep, whatever a graceful
         * restart brings meanwhile */
        pyexec_reg_slot(r, idx)->timeout = c->timeout;
        pyexec_reg_slot(r, idx)->max_output = c->max_output;
        pyexec_reg_slot(r, idx)->max_code = c->max_code;
        pyexec_reg_slot(r, idx)->conf_gen = c->gen;
        todo[n] = idx;
        gens[n] = pyexec_reg_slot(r, idx)->gen;
        memcpy(tokens[n], pyexec_reg_slot(r, idx)->token, PYEXEC_TOKEN_LEN);
        n++;
    }
    pyexec_unlock();

    for (i = 0; i < n; i++) {
        unsigned char *f = sup->conf->spawn + PYEXEC_FRAME_HDR_LEN;
        /* slot and gen are the first two LE words of the fixed part */
        f[0] = (unsigned char)todo[i];
        f[1] = (unsigned char)(todo[i] >> 8);
        f[2] = (unsigned char)(todo[i] >> 16);
        f[3] = (unsigned char)(todo[i] >> 24);
        f[4] = (unsigned char)gens[i];
        f[5] = (unsigned char)(gens[i] >> 8);
        f[6] = (unsigned char)(gens[i] >> 16);
        f[7] = (unsigned char)(gens[i] >> 24);
        memcpy(f + 32, tokens[i], PYEXEC_TOKEN_LEN);
        lfd = helper_socket((uint32_t)todo[i], gens[i]);
        if (lfd < 0 || send_spawn(sup, lfd) != 0) {
            if (lfd < 0) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, sup->s,
                             PYEXEC_LOGNO(00224) "cannot create a helper "
                             "socket in %s", pyexec_state.sockdir);
            }
            else {
                unlink_helper_socket((uint32_t)todo[i], gens[i]);
            }
            if (pyexec_lock() == APR_SUCCESS) {
                pyexec_reg_reaped(sup->reg, todo[i], PYEXEC_END_SPAWN_FAILED);
                pyexec_unlock();
            }
        }
        if (lfd >= 0) {
            close(lfd);         /* the zygote has its own copy now */
        }
    }
}

static void shutdown_all(sup_t *sup)
{
    uint32_t i;
    int waited;

    if (pyexec_lock() == APR_SUCCESS) {
        for (i = 0; i < sup->reg->nslots; i++) {
            pyexec_slot_t *s = pyexec_reg_slot(sup->reg, (int32_t)i);
            if (s->state != PYEXEC_SLOT_FREE && s->pid > 0) {
                kill(s->pid, SIGKILL);
            }
        }
        pyexec_reg_reset(sup->reg);
        pyexec_unlock();
    }
    if (sup->zpid > 0) {
        kill(sup->zpid, SIGKILL);
    }
    /* reap everything so that no helper outlives a stopped httpd */
    for (waited = 0; waited < 200; waited++) {
        if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) {
            break;
        }
        usleep(10000);
    }
    clear_sockdir(pyexec_state.sockdir);
}

/* Become httpd's User like a worker, keeping only what a supervisor of
 * helpers running as another user needs: to signal them and to start
 * the zygote as that user. Nothing else of root survives. */
static int drop_privileges(sup_t *sup)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    uint32_t keep = (1u << CAP_KILL) | (1u << CAP_SETUID)
                    | (1u << CAP_SETGID);

    if (sup->helper_uid == (uid_t)-1
        || sup->helper_uid == ap_unixd_config.user_id) {
        /* helpers run as User, like us: plain root drop */
        sup->helper_uid = (uid_t)-1;
        return ap_run_drop_privileges(sup->pool, sup->s);
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0
        || ap_run_drop_privileges(sup->pool, sup->s) != 0) {
        return -1;
    }
    memset(data, 0, sizeof(data));
    data[0].effective = keep;
    data[0].permitted = keep;
    if (syscall(SYS_capset, &hdr, data) != 0) {
        return -1;
    }
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    return 0;
}

static void resolve_helper_user(sup_t *sup)
{
    const pyexec_conf_t *c = &pyexec_state.conf;

    sup->helper_uid = (uid_t)-1;
    sup->helper_gid = (gid_t)-1;
    if (geteuid() != 0 || !c->helper_user) {
        return;
    }
    sup->helper_uid = ap_uname2id(c->helper_user);
    if (c->helper_group) {
        sup->helper_gid = ap_gname2id(c->helper_group);
    }
    else {
        struct passwd *pw = getpwuid(sup->helper_uid);

        sup->helper_gid = pw ? pw->pw_gid : ap_unixd_config.group_id;
    }
}

/* A new error log from httpd's parent (pyexec_supervisor_send_log): it
 * replaces ours, stderr included, and the zygote's. */
static void take_log(sup_t *sup)
{
    unsigned char buf[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    apr_os_file_t ours;
    int fd;
    ssize_t n;

    while (sup->log_fd >= 0
           && (n = pyexec_io_recv_fd(sup->log_fd, buf, sizeof(buf), &fd))
              != -1) {
        if (n == 0) {
            close(sup->log_fd); /* the parent is gone */
            sup->log_fd = -1;
            return;
        }
        if (fd < 0) {
            continue;
        }
        if (pyexec_frame_decode_hdr(buf, (size_t)n, 0, &hdr)
            == PYEXEC_FRAME_OK && hdr.type == PYEXEC_MSG_LOGFD) {
            if (sup->s->error_log
                && apr_os_file_get(&ours, sup->s->error_log) == APR_SUCCESS
                && ours != fd) {
                dup2(fd, ours);
            }
            dup2(fd, 2);
            if (sup->zfd >= 0) {
                pyexec_io_send_fd(sup->zfd, buf, PYEXEC_FRAME_HDR_LEN, fd);
            }
        }
        close(fd);
    }
}

static void supervisor_main(server_rec *s, apr_pool_t *p)
{
    sup_t sup;
    apr_status_t rv;
    apr_time_t next_scan = 0;

    memset(&sup, 0, sizeof(sup));
    sup.s = s;
    sup.zfd = -1;
    sup.ctl_fd = -1;
    sup.log_fd = sup_log_child;
    if (sup.log_fd >= 0) {
        set_nonblock(sup.log_fd);   /* take_log reads until it is empty */
    }
    apr_pool_create(&sup.pool, p);
    sup.reg = pyexec_state.reg;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    set_signals();
    /* httpd's listeners and logs are not ours to hold */
    ap_close_listeners();

    rv = apr_global_mutex_child_init(&pyexec_state.mutex,
                                     pyexec_state.mutex_file, sup.pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00240) "supervisor: mutex child init");
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    if (pyexec_lock() == APR_SUCCESS) {
        pyexec_reg_reset(sup.reg);
        pyexec_unlock();
    }
    sup.helper_fd = open(pyexec_state.conf.helper_path, O_PATH | O_CLOEXEC);
    if (sup.helper_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     PYEXEC_LOGNO(00241) "cannot open PyExecHelper %s",
                     pyexec_state.conf.helper_path);
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    resolve_helper_user(&sup);
    if (prepare_sockdir(&sup) != 0) {
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    if (geteuid() == 0 && drop_privileges(&sup) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     PYEXEC_LOGNO(00242) "supervisor cannot drop privileges");
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    if (open_ctl(&sup) != 0) {
        exit(SUPERVISOR_STARTUP_ERROR);
    }
    /* Kept over graceful restarts, we are stopped by httpd's parent when
     * a generation ends otherwise; should the parent die without that
     * (a configuration error on restart, a SIGKILL), we go too. Set
     * after the change of user, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != sup_httpd_pid) {
        exit(0);
    }
    sup.conf = apr_pcalloc(sup.pool, sizeof(*sup.conf));
    sup.conf_next = apr_pcalloc(sup.pool, sizeof(*sup.conf_next));
    /* published before we were forked; only a graceful restart racing
     * with our start could make us wait here */
    while (!take_conf(&sup)) {
        usleep(1000);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 PYEXEC_LOGNO(00243) "supervisor %d started: %d spare "
                 "helpers, at most %d sessions, helper %s running as uid %d",
                 (int)getpid(), pyexec_state.conf.spare_helpers,
                 pyexec_state.conf.max_sessions,
                 pyexec_state.conf.helper_path,
                 sup.helper_uid == (uid_t)-1 ? (int)geteuid()
                                             : (int)sup.helper_uid);

    while (!sup_stop) {
        struct pollfd pfd[4];
        int nfd = 0;
        char drain[64];
        apr_time_t now = apr_time_now();

        if (sup.zpid == 0 && now >= sup.zygote_retry_at) {
            zygote_start(&sup);
        }
        pfd[nfd].fd = sig_pipe[0];
        pfd[nfd++].events = POLLIN;
        pfd[nfd].fd = sup.ctl_fd;
        pfd[nfd++].events = POLLIN;
        if (sup.zfd >= 0) {
            pfd[nfd].fd = sup.zfd;
            pfd[nfd++].events = POLLIN;
        }
        if (sup.log_fd >= 0) {
            pfd[nfd].fd = sup.log_fd;
            pfd[nfd++].events = POLLIN;
        }
        poll(pfd, (nfds_t)nfd, SCAN_INTERVAL_MS);
        while (read(sig_pipe[0], drain, sizeof(drain)) > 0) {
            /* just wake-ups */
        }
        /* messages first: a SPAWNED must be known before its pid is
         * reaped */
        handle_zygote_msgs(&sup);
        reap(&sup);
        handle_ctl_msgs(&sup);
        take_log(&sup);
        now = apr_time_now();
        /* new settings: the spares made with the old ones go at once */
        if (take_conf(&sup) || now >= next_scan) {
            scan(&sup);
            next_scan = now + apr_time_from_msec(SCAN_INTERVAL_MS);
        }
        refill(&sup);
    }
    shutdown_all(&sup);
    exit(0);
}
