/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The one seam between the helper and the operating system's
 * confinement. Each platform provides one file implementing it
 * (sandbox_linux.c here). The zygote calls pyexec_sandbox_zygote() once
 * and pyexec_sandbox_fork() for every helper; each helper calls
 * pyexec_sandbox_apply() once, after the interpreter is ready and
 * before it reads any user byte.
 *
 * The threat model: user code is assumed to run arbitrary native code
 * inside the helper. Every layer here must hold on its own.
 */
#ifndef HELPER_SANDBOX_H
#define HELPER_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyexec_protocol.h"    /* PYEXEC_LAYER_* */

/* Namespaces every helper will share (user, net, ipc, uts); called in
 * the zygote before the interpreter starts. Returns the layers obtained;
 * why any is missing goes to err. */
uint32_t pyexec_sandbox_zygote(char *err, size_t err_len);

/* In the zygote, once its interpreter is up: replace the filesystem the
 * helpers will see with a read-only tree holding only `paths` (the
 * Python library) and the host's /proc (which each helper drops once it
 * has read its own numbers). Returns the layers gained. */
uint32_t pyexec_sandbox_zygote_root(const char *const *paths, char *err,
                                    size_t err_len);

/* fork() for a helper: the child becomes the zygote's parent's child
 * (the supervisor reaps and kills it) and, where the host allows, the
 * first process of its own pid namespace, with its own copy of the mount
 * tree. Returns as fork() does. */
pid_t pyexec_sandbox_fork(uint32_t *layers);

/* The helper's pid as its supervisor sees it. */
pid_t pyexec_sandbox_outer_pid(void);

typedef struct {
    uint64_t memory_limit;      /* bytes above the current footprint */
    uint32_t cpu_seconds;       /* CPU time backstop for the session */
    int listen_fd;              /* the one socket it may accept on */
    const int *keep_fds;        /* descriptors that survive */
    int nkeep;
    const char *const *read_paths;  /* NULL-terminated: read-only access */
    uint32_t required;          /* layers that must hold, or fail */
    uint32_t skip;              /* tests only: layers to leave out, as on
                                   a host that lacks them */
} pyexec_sandbox_opts_t;

/* Confine the calling process for good. *layers receives what holds
 * (including what pyexec_sandbox_fork() obtained, passed in). Returns 0,
 * or -1 with a reason in err if a required layer could not be put in
 * place: the helper must then not serve. */
int pyexec_sandbox_apply(const pyexec_sandbox_opts_t *opts,
                         uint32_t *layers, char *err, size_t err_len);

#endif /* HELPER_SANDBOX_H */
