/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Linux confinement of a session helper. This first layer is resource
 * limits and privilege hygiene; seccomp, Landlock and namespaces are
 * added here, behind the same function, by the sandbox work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper_sandbox.h"

/* Address space in use now, from /proc/self/statm (first field). */
static int current_vm_bytes(uint64_t *out)
{
    char buf[128];
    ssize_t n;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    unsigned long long pages;

    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu", &pages) != 1) {
        return -1;
    }
    *out = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

/* Close everything a helper might have inherited except its channels:
 * an inherited descriptor is a way out of any sandbox. */
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

int pyexec_sandbox_apply(const pyexec_sandbox_opts_t *opts,
                         char *layers, size_t layers_len,
                         char *err, size_t err_len)
{
    uint64_t base;

    close_inherited(opts);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, err_len, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    /* not dumpable: no core, no ptrace attach by same-uid processes */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    if (set_limit(RLIMIT_CORE, 0, 0) != 0
        || set_limit(RLIMIT_FSIZE, 0, 0) != 0) {
        snprintf(err, err_len, "rlimit core/fsize: %s", strerror(errno));
        return -1;
    }
    if (opts->cpu_seconds) {
        /* soft below hard: SIGXCPU first, SIGKILL a second later */
        if (set_limit(RLIMIT_CPU, opts->cpu_seconds,
                      opts->cpu_seconds + 1) != 0) {
            snprintf(err, err_len, "rlimit cpu: %s", strerror(errno));
            return -1;
        }
    }
    /* no new processes or threads: counted per uid, so 0 refuses any */
    set_limit(RLIMIT_NPROC, 0, 0);
    if (set_limit(RLIMIT_NOFILE, 32, 32) != 0) {
        snprintf(err, err_len, "rlimit nofile: %s", strerror(errno));
        return -1;
    }
    if (opts->memory_limit) {
        if (current_vm_bytes(&base) != 0) {
            snprintf(err, err_len, "cannot read /proc/self/statm");
            return -1;
        }
        if (set_limit(RLIMIT_AS, base + opts->memory_limit,
                      base + opts->memory_limit) != 0) {
            snprintf(err, err_len, "rlimit as: %s", strerror(errno));
            return -1;
        }
    }
    snprintf(layers, layers_len, "rlimits no-new-privs");
    return 0;
}
