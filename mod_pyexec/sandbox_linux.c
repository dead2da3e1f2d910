/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Linux confinement of session helpers, layer by layer. Each layer
 * assumes the others have fallen:
 *
 *  namespaces  user, net, ipc, uts for the zygote and all its helpers
 *              (no network interface exists), plus a pid namespace of
 *              its own for every helper (no other process is visible);
 *  mount ns    a read-only tmpfs root holding only the Python library:
 *              the rest of the host's filesystem does not exist (not even
 *              for stat), and this holds where Landlock is missing;
 *  landlock    read-only access to the Python library directories and
 *              nothing else; TCP bind/connect and signals or abstract
 *              sockets leaving the sandbox refused where the ABI has them;
 *  seccomp     an allow-list of system calls traced from the real
 *              workload: no exec, no new processes or threads, no new
 *              sockets, no writes to files, no executable memory;
 *  privileges  no capabilities, PR_SET_NO_NEW_PRIVS, not dumpable;
 *  rlimits     address space, CPU, no core, no file size, no processes,
 *              few descriptors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <seccomp.h>

#include "helper_sandbox.h"
#include "pyexec_io.h"

/* --- small helpers --------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;
    size_t len = strlen(text);

    if (fd < 0) {
        return -1;
    }
    n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void append_err(char *err, size_t len, const char *what)
{
    size_t used = strlen(err);

    if (used < len) {
        snprintf(err + used, len - used, "%s%s: %s", used ? "; " : "", what,
                 strerror(errno));
    }
}

/* --- namespaces ------------------------------------------------------ */

static uint32_t zygote_layers;
static int zygote_has_mountns;

/* mkdir -p below an existing root */
static int make_path(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int bind_readonly(const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0) {
        return -1;
    }
    return mount(NULL, dst, NULL,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 NULL);
}

uint32_t pyexec_sandbox_zygote_root(const char *const *paths, char *err,
                                    size_t err_len)
{
    /* any directory that exists everywhere will do as the mount point:
     * in our own mount namespace the host never sees it */
    static const char base[] = "/tmp";
    char dst[4096];

    err[0] = '\0';
    if (!zygote_has_mountns) {
        snprintf(err, err_len, "no mount namespace");
        return 0;
    }
    if (mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=64k") != 0) {
        append_err(err, err_len, "tmpfs root");
        return 0;
    }
    for (; paths && *paths; paths++) {
        struct stat st;

        if (stat(*paths, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        snprintf(dst, sizeof(dst), "%s%s", base, *paths);
        if (make_path(dst) != 0 || bind_readonly(*paths, dst) != 0) {
            append_err(err, err_len, *paths);
            return 0;
        }
    }
    /* the host's /proc, for each helper's own numbers before it drops it */
    snprintf(dst, sizeof(dst), "%s/proc", base);
    if (make_path(dst) != 0
        || mount("/proc", dst, NULL, MS_BIND | MS_REC, NULL) != 0) {
        append_err(err, err_len, "/proc");
        return 0;
    }
    snprintf(dst, sizeof(dst), "%s/.old", base);
    if (mkdir(dst, 0700) != 0
        || syscall(SYS_pivot_root, base, dst) != 0 || chdir("/") != 0
        || umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0
        || mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY
                 | MS_NOSUID | MS_NODEV, NULL) != 0) {
        append_err(err, err_len, "pivot_root");
        return 0;
    }
    zygote_layers |= PYEXEC_LAYER_MOUNTNS;
    return PYEXEC_LAYER_MOUNTNS;
}

uint32_t pyexec_sandbox_zygote(char *err, size_t err_len)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int flags = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;

    err[0] = '\0';
    zygote_layers = 0;
    if (uid != 0) {
        flags |= CLONE_NEWUSER;
    }
    if (unshare(flags) != 0) {
        append_err(err, err_len, "unshare(user, net, ipc, uts)");
        return zygote_layers;
    }
    if (flags & CLONE_NEWUSER) {
        /* keep our own ids inside, so files and the supervisor's kill()
         * see the same user */
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)uid, (unsigned)uid);
        if (write_file("/proc/self/setgroups", "deny") != 0
            || write_file("/proc/self/uid_map", map) != 0) {
            append_err(err, err_len, "uid_map");
            return zygote_layers;
        }
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)gid, (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) != 0) {
            append_err(err, err_len, "gid_map");
            return zygote_layers;
        }
        zygote_layers |= PYEXEC_LAYER_USERNS;
    }
    zygote_layers |= PYEXEC_LAYER_NETNS | PYEXEC_LAYER_IPCNS
                     | PYEXEC_LAYER_UTSNS;
    /* the mount namespace comes now, the new root once the interpreter
     * knows its library paths */
    if (unshare(CLONE_NEWNS) == 0
        && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0) {
        zygote_has_mountns = 1;
    }
    else {
        append_err(err, err_len, "mount namespace");
    }
    /* the host's name is none of the user's business */
    if (sethostname("sandbox", 7) != 0) {
        append_err(err, err_len, "sethostname");
    }
    return zygote_layers;
}

pid_t pyexec_sandbox_fork(uint32_t *layers)
{
    long pid;

    *layers = zygote_layers;
    /* CLONE_PARENT: the supervisor is the parent, not the zygote */
    if (zygote_layers & (PYEXEC_LAYER_USERNS)) {
        /* a mount tree of its own, so that dropping /proc is private */
        pid = syscall(SYS_clone, CLONE_PARENT | CLONE_NEWPID | SIGCHLD
                      | ((zygote_layers & PYEXEC_LAYER_MOUNTNS)
                         ? CLONE_NEWNS : 0), 0, NULL, NULL, 0);
        if (pid >= 0) {
            if (pid == 0) {
                *layers |= PYEXEC_LAYER_PIDNS;
            }
            return (pid_t)pid;
        }
    }
    pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
    if (pid == 0) {
        /* sharing the zygote's mount tree: its /proc must stay */
        *layers &= ~PYEXEC_LAYER_MOUNTNS;
    }
    return (pid_t)pid;
}

pid_t pyexec_sandbox_outer_pid(void)
{
    char buf[32];
    ssize_t n;

    /* /proc belongs to the outer pid namespace: its "self" is the pid the
     * supervisor knows, where getpid() in our own namespace says 1 */
    n = readlink("/proc/self", buf, sizeof(buf) - 1);
    if (n <= 0) {
        return getpid();
    }
    buf[n] = '\0';
    return (pid_t)atoi(buf);
}

/* --- descriptors, rlimits, privileges --------------------------------- */

static void close_inherited(const pyexec_sandbox_opts_t *o)
{
    int sorted[16], n = 0, lo = 0;

    for (int i = 0; i < o->nkeep && n < 16; i++) {
        int j = n++;
        while (j > 0 && sorted[j - 1] > o->keep_fds[i]) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = o->keep_fds[i];
    }
    for (int i = 0; i < n; i++) {
        if (sorted[i] > lo) {
            syscall(SYS_close_range, (unsigned)lo, (unsigned)sorted[i] - 1, 0);
        }
        lo = sorted[i] + 1;
    }
    syscall(SYS_close_range, (unsigned)lo, ~0u, 0);
}

static int set_limit(int res, rlim_t soft, rlim_t hard)
{
    struct rlimit rl;

    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    return setrlimit(res, &rl);
}

/* Address space in use now, from /proc/self/statm (first field). */
static int current_vm_bytes(uint64_t *out)
{
    char buf[128];
    unsigned long long pages;

    if (pyexec_read_small_file("/proc/self/statm", buf, sizeof(buf)) < 0
        || sscanf(buf, "%llu", &pages) != 1) {
        return -1;
    }
    *out = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

static int apply_rlimits(const pyexec_sandbox_opts_t *o, char *err,
                         size_t len)
{
    uint64_t base;

    if (set_limit(RLIMIT_CORE, 0, 0) != 0
        || set_limit(RLIMIT_FSIZE, 0, 0) != 0
        || set_limit(RLIMIT_NOFILE, 32, 32) != 0) {
        append_err(err, len, "rlimit core/fsize/nofile");
        return -1;
    }
    /* soft below hard: SIGXCPU first, SIGKILL a second later */
    if (o->cpu_seconds
        && set_limit(RLIMIT_CPU, o->cpu_seconds, o->cpu_seconds + 1) != 0) {
        append_err(err, len, "rlimit cpu");
        return -1;
    }
    /* counted per uid: 0 refuses any new process or thread */
    set_limit(RLIMIT_NPROC, 0, 0);
    if (o->memory_limit) {
        if (current_vm_bytes(&base) != 0) {
            append_err(err, len, "/proc/self/statm");
            return -1;
        }
        if (set_limit(RLIMIT_AS, base + o->memory_limit,
                      base + o->memory_limit) != 0) {
            append_err(err, len, "rlimit as");
            return -1;
        }
    }
    return 0;
}

static int drop_capabilities(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return (int)syscall(SYS_capset, &hdr, data);
}

/* --- landlock -------------------------------------------------------- */

/* Newer than this system's headers: the ABI is stable, so we name the
 * bits ourselves and ask the kernel which it knows. */
#define LL_FS_TRUNCATE     (1ULL << 14)     /* ABI 3 */
#define LL_FS_IOCTL_DEV    (1ULL << 15)     /* ABI 5 */
#define LL_NET_BIND_TCP    (1ULL << 0)      /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)  /* ABI 6 */
#define LL_SCOPE_SIGNAL    (1ULL << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

static int apply_landlock(const char *const *paths, uint32_t *layers,
                          char *err, size_t len)
{
    struct ll_ruleset_attr attr;
    struct landlock_path_beneath_attr rule;
    size_t attr_size;
    long abi;
    int rs;
    uint64_t read_rights = LANDLOCK_ACCESS_FS_READ_FILE
                           | LANDLOCK_ACCESS_FS_READ_DIR;

    abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                  LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        append_err(err, len, "landlock unavailable");
        return -1;
    }
    memset(&attr, 0, sizeof(attr));
    /* every right this ABI knows is handled, so anything not granted
     * below is refused */
    attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
    attr_size = sizeof(uint64_t);
    if (abi >= 2) {
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    }
    if (abi >= 3) {
        attr.handled_access_fs |= LL_FS_TRUNCATE;
    }
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        attr_size = 2 * sizeof(uint64_t);
    }
    if (abi >= 5) {
        attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        attr_size = 3 * sizeof(uint64_t);
    }
    rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) {
        append_err(err, len, "landlock_create_ruleset");
        return -1;
    }
    for (; paths && *paths; paths++) {
        struct stat st;
        int fd = open(*paths, O_PATH | O_CLOEXEC);

        if (fd < 0) {
            continue;           /* a path this host lacks grants nothing */
        }
        rule.parent_fd = fd;
        rule.allowed_access = read_rights;
        if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
            rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
        }
        if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH,
                    &rule, 0) != 0) {
            append_err(err, len, *paths);
            close(fd);
            close(rs);
            return -1;
        }
        close(fd);
    }
    if (syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        append_err(err, len, "landlock_restrict_self");
        close(rs);
        return -1;
    }
    close(rs);
    *layers |= PYEXEC_LAYER_LANDLOCK;
    if (abi >= 4) {
        *layers |= PYEXEC_LAYER_LANDLOCK_NET;
    }
    if (abi >= 6) {
        *layers |= PYEXEC_LAYER_LANDLOCK_SCOPE;
    }
    return 0;
}

/* --- seccomp --------------------------------------------------------- */

/* What the interpreter needs to run already-loaded code, import more of
 * the standard library read-only, keep time, sleep, run an asyncio loop
 * on a socketpair and talk over the descriptor it was handed. Derived by
 * tracing the helper under the test workload (strace -f -c). */
static const int allowed[] = {
    SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(write),
    SCMP_SYS(writev), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(getdents64),
    SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
    SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(dup), SCMP_SYS(dup3),
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
    SCMP_SYS(time), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
    SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
    SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(getresuid),
    SCMP_SYS(getresgid), SCMP_SYS(uname), SCMP_SYS(sysinfo),
    SCMP_SYS(getrusage), SCMP_SYS(times),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigpending), SCMP_SYS(rt_sigtimedwait), SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd2),
    SCMP_SYS(pipe2),
    SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(shutdown),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername), SCMP_SYS(getsockopt),
    /* the streamed run's coalescing timer (helper_stream.c): a process
     * can only ever signal itself with it */
    SCMP_SYS(setitimer), SCMP_SYS(getitimer),
    /* no setsockopt: SO_SNDBUF alone would let each of a session's
     * descriptors queue megabytes the kernel holds outside RLIMIT_AS
     * (net.core.wmem_max); at the default buffer sizes the 32 of
     * RLIMIT_NOFILE hold a few MiB (docs/security.md) */
};

/* Refused by killing the process: nothing legitimate asks for these,
 * so asking is an attack. */
static const int fatal[] = {
    SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace),
    SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
    SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(kexec_load),
    SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
    SCMP_SYS(finit_module), SCMP_SYS(delete_module),
    SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl),
    SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(personality),
    SCMP_SYS(setns), SCMP_SYS(unshare), SCMP_SYS(mount), SCMP_SYS(umount2),
    SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(open_by_handle_at),
    SCMP_SYS(name_to_handle_at), SCMP_SYS(kcmp), SCMP_SYS(fanotify_init),
    SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(modify_ldt),
    SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff),
    SCMP_SYS(fsopen), SCMP_SYS(fsmount), SCMP_SYS(fsconfig),
    SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
};

/* The ioctls CPython makes: isatty() and blocking mode. */
static const unsigned long ioctls[] = {
    TCGETS, FIONBIO, FIOCLEX, FIONCLEX, FIONREAD,
};

static int apply_seccomp(const pyexec_sandbox_opts_t *o, char *err,
                         size_t len)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    pid_t self = getpid();
    size_t i;
    int rc = 0;

    if (!ctx) {
        append_err(err, len, "seccomp_init");
        return -1;
    }
    /* 32-bit and x32 calls would bypass every rule below */
    rc |= seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
                           SCMP_ACT_KILL_PROCESS);
#ifdef SCMP_FLTATR_CTL_OPTIMIZE
    /* the filter runs on every system call: a binary search over the
     * list, not a walk through it (libseccomp >= 2.5; same verdicts) */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    }
    for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        rc |= seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, fatal[i], 0);
    }
    /* files: read-only opens (Landlock decides which files) */
    /* O_TMPFILE contains O_DIRECTORY: mask only its own bit, or no
     * directory could be listed (and no package imported lazily) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ,
                                   O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
                                   | O_APPEND | (O_TMPFILE & ~O_DIRECTORY),
                                   0));
    /* memory: never executable once we run user code */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* sockets: accept on ours; pairs of local sockets for asyncio */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(accept4), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)o->listen_fd));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                           SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    /* sending only where a socket is connected already: a destination
     * address would reach any named socket on the host, the supervisor's
     * included (so no sendmsg, whose address the filter cannot see) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 1,
                           SCMP_A4(SCMP_CMP_EQ, 0));
    /* descriptor flags, but no F_SETOWN/F_SETSIG/O_ASYNC and no ioctl
     * owner changes: SIGIO can be aimed at any process of our uid */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_GETFD));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_SETFD));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_GETFL));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 2,
                           SCMP_A1(SCMP_CMP_EQ, F_SETFL),
                           SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_DUPFD_CLOEXEC));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_DUPFD));
    for (i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                               SCMP_A1(SCMP_CMP_EQ, ioctls[i]));
    }
    /* signals: only to ourselves */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    /* limits may be read, not raised */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                           SCMP_A2(SCMP_CMP_EQ, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrlimit), 0);
    if (rc != 0) {
        errno = -rc;
        append_err(err, len, "seccomp rules");
        seccomp_release(ctx);
        return -1;
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        errno = -rc;
        append_err(err, len, "seccomp_load");
        return -1;
    }
    return 0;
}

/* --- all of it ------------------------------------------------------- */

int pyexec_sandbox_apply(const pyexec_sandbox_opts_t *opts,
                         uint32_t *layers, char *err, size_t err_len)
{
    uint32_t missing;

    err[0] = '\0';
    close_inherited(opts);
    if (apply_rlimits(opts, err, err_len) != 0) {
        return -1;
    }
    *layers |= PYEXEC_LAYER_RLIMITS;
    /* our numbers are read: the host's processes are none of our
     * business (needs the capabilities dropped just below) */
    if ((*layers & PYEXEC_LAYER_MOUNTNS) && umount2("/proc", MNT_DETACH) != 0) {
        append_err(err, err_len, "umount /proc");
        *layers &= ~PYEXEC_LAYER_MOUNTNS;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        append_err(err, err_len, "PR_SET_NO_NEW_PRIVS");
        return -1;
    }
    *layers |= PYEXEC_LAYER_NO_NEW_PRIVS;
    if (drop_capabilities() == 0 && geteuid() != 0) {
        *layers |= PYEXEC_LAYER_UNPRIVILEGED;
    }
    if (!(opts->skip & PYEXEC_LAYER_LANDLOCK)) {
        apply_landlock(opts->read_paths, layers, err, err_len);
    }
    /* last: the filter would refuse the calls that set up the rest */
    if (!(opts->skip & PYEXEC_LAYER_SECCOMP)
        && apply_seccomp(opts, err, err_len) == 0) {
        *layers |= PYEXEC_LAYER_SECCOMP;
    }
    missing = opts->required & ~*layers;
    if (*layers & PYEXEC_LAYERS_FS) {
        missing &= ~PYEXEC_LAYERS_FS;   /* one of the two is enough */
    }
    if (missing) {
        char names[160];
        size_t used = strlen(err);

        pyexec_layers_format(missing, names, sizeof(names));
        snprintf(err + used, err_len - used, "%srequired but missing: %s",
                 used ? "; " : "", names);
        return -1;
    }
    return 0;
}
