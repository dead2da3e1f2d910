/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor process: forked from httpd's parent at post_config
 * (pyexec_supervisor_start), kept over graceful restarts, stopped with
 * httpd. It starts as whatever httpd's parent is, usually root, and only
 * these steps of its start-up run with root's rights: attaching the
 * registry's mutex and clearing the table (as the parent would), opening
 * the helper program, resolving PyExecUser, handing PyExecSocketDir to
 * User. It then becomes httpd's User, keeping CAP_KILL, CAP_SETUID and
 * CAP_SETGID only when the helpers run as a user of their own
 * (drop_privileges), before it binds its control socket, starts the
 * zygote or reads anything a worker or helper sends.
 *
 * Its loop: signals, the zygote's reports, reaping, KILL and WAKE
 * datagrams from workers, a new error log or new settings from httpd's
 * parent, the scan (idle sessions, overdue runs, stale spares), and the
 * refill of spares (pyexec_supervisor_spawn.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
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
#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_state.h"
#include "pyexec_supervisor_main.h"
#include "pyexec_supervisor_proc.h"

#define SCAN_INTERVAL_MS      200
/* A worker kills its own overdue execution; this is the backstop for a
 * worker that is gone. */
#define DEADLINE_BACKSTOP_US  (500 * 1000)
#define SPAWN_TIMEOUT_US      (30 * 1000 * 1000)

static volatile sig_atomic_t sup_stop;
static int sig_pipe[2] = {-1, -1};

int pyexec_sup_stopping(void)
{
    return sup_stop != 0;
}

/* --- signals --------------------------------------------------------- */

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

/* --- start-up, as root where httpd started as root ------------------- */

/* Remove sockets a previous supervisor left behind (and, at the end, as
 * User, our own). */
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

static int prepare_sockdir(pyexec_sup_t *sup)
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

/* Become httpd's User like a worker, keeping only what a supervisor of
 * helpers running as another user needs: to signal them and to start
 * the zygote as that user. Nothing else of root survives. */
static int drop_privileges(pyexec_sup_t *sup)
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

/* PyExecUser and PyExecGroup, looked up while the name service is
 * still ours to read. */
static void resolve_helper_user(pyexec_sup_t *sup)
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

/* --- as User from here on -------------------------------------------- */

static int open_ctl(pyexec_sup_t *sup)
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
    /* as User already: in a directory User owns, a path can be swapped
     * for a symbolic link, so nothing here may act on a path with root's
     * rights */
    chmod(sa.sun_path, 0600);
    sup->ctl_fd = fd;
    return 0;
}

/* Take up settings published since we last looked (pyexec_settings.h);
 * 1 if there were new ones (scan then replaces the spares made with the
 * old). */
static int take_conf(pyexec_sup_t *sup)
{
    pyexec_settings_t *swap;

    if (!pyexec_settings_take(pyexec_state.shared.live, sup->conf->gen,
                              sup->conf_next)) {
        return 0;
    }
    swap = sup->conf;
    sup->conf = sup->conf_next;
    sup->conf_next = swap;
    return 1;
}

/* A new error log from httpd's parent (pyexec_supervisor_send_log): it
 * replaces ours, stderr included, and the zygote's. */
static void take_log(pyexec_sup_t *sup)
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

/* --- KILL and WAKE from httpd's workers ------------------------------ */

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

static void handle_ctl_msgs(pyexec_sup_t *sup)
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
                const pyexec_slot_t *s = pyexec_reg_slot(sup->reg,
                                                         (int32_t)m.slot);
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
 * never became ready, spares made with older settings; then helpers
 * using CPU time nobody asked for. */
static void scan(pyexec_sup_t *sup)
{
    const pyexec_sweep_t policy = {
        .idle_timeout = sup->conf->idle_timeout,
        .deadline_slack = DEADLINE_BACKSTOP_US,
        .spawn_timeout = SPAWN_TIMEOUT_US,
        .conf_gen = sup->conf->gen,
    };
    size_t nv;

    if (pyexec_lock() != APR_SUCCESS) {
        return;
    }
    /* room for every slot: a scan that stopped at some number of kills
     * would spend it on helpers already dying, and never reach the rest */
    nv = pyexec_reg_sweep(sup->reg, pyexec_now_usec(), &policy,
                          sup->victims, sup->reg->nslots);
    pyexec_unlock();
    while (nv > 0) {
        kill(sup->victims[--nv], SIGKILL);
    }
    pyexec_sup_cpu_scan(sup);
}

/* --- the end --------------------------------------------------------- */

static void shutdown_all(pyexec_sup_t *sup)
{
    uint32_t i;
    int waited;

    if (pyexec_lock() == APR_SUCCESS) {
        for (i = 0; i < sup->reg->nslots; i++) {
            const pyexec_slot_t *s = pyexec_reg_slot(sup->reg, (int32_t)i);
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

/* --- the process ----------------------------------------------------- */

void pyexec_supervisor_main(server_rec *s, apr_pool_t *p, int log_fd,
                            pid_t httpd_pid)
{
    pyexec_sup_t sup;
    apr_status_t rv;
    apr_time_t next_scan = 0;

    memset(&sup, 0, sizeof(sup));
    sup.s = s;
    sup.zfd = -1;
    sup.ctl_fd = -1;
    sup.log_fd = log_fd;
    if (sup.log_fd >= 0) {
        /* take_log reads until it is empty */
        pyexec_io_set_nonblock(sup.log_fd);
    }
    apr_pool_create(&sup.pool, p);
    sup.reg = pyexec_state.shared.reg;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    set_signals();
    /* httpd's listeners and logs are not ours to hold */
    ap_close_listeners();

    rv = apr_global_mutex_child_init(&pyexec_state.shared.mutex,
                                     pyexec_state.shared.mutex_file,
                                     sup.pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00240) "supervisor: mutex child init");
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    if (pyexec_lock() == APR_SUCCESS) {
        pyexec_reg_reset(sup.reg);
        pyexec_unlock();
    }
    /* root's part, where httpd started as root: the helper program may
     * sit where User cannot search, and the socket dir goes to User */
    sup.helper_fd = open(pyexec_state.conf.helper_path, O_PATH | O_CLOEXEC);
    if (sup.helper_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     PYEXEC_LOGNO(00241) "cannot open PyExecHelper %s",
                     pyexec_state.conf.helper_path);
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    resolve_helper_user(&sup);
    if (prepare_sockdir(&sup) != 0) {
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    if (geteuid() == 0 && drop_privileges(&sup) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     PYEXEC_LOGNO(00242) "supervisor cannot drop privileges");
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    /* as User from here on */
    if (open_ctl(&sup) != 0) {
        exit(PYEXEC_SUPERVISOR_STARTUP_ERROR);
    }
    /* Kept over graceful restarts, we are stopped by httpd's parent when
     * a generation ends otherwise; should the parent die without that
     * (a configuration error on restart, a SIGKILL), we go too. Set
     * after the change of user, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != httpd_pid) {
        exit(0);
    }
    sup.conf = apr_pcalloc(sup.pool, sizeof(*sup.conf));
    sup.conf_next = apr_pcalloc(sup.pool, sizeof(*sup.conf_next));
    sup.spawn_frame = apr_palloc(sup.pool, PYEXEC_SPAWN_FRAME_MAX);
    sup.victims = apr_palloc(sup.pool, sup.reg->nslots * sizeof(int32_t));
    pyexec_sup_cpu_init(&sup);
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
            pyexec_sup_zygote_start(&sup);
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
        pyexec_sup_zygote_msgs(&sup);
        pyexec_sup_reap(&sup);
        handle_ctl_msgs(&sup);
        take_log(&sup);
        now = apr_time_now();
        /* new settings: the spares made with the old ones go at once */
        if (take_conf(&sup) || now >= next_scan) {
            scan(&sup);
            next_scan = now + apr_time_from_msec(SCAN_INTERVAL_MS);
        }
        pyexec_sup_refill(&sup);
    }
    shutdown_all(&sup);
    exit(0);
}
