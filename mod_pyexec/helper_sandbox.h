/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The one seam between a session helper and the operating system's
 * confinement. Each platform provides one file implementing it
 * (sandbox_linux.c here); the helper calls pyexec_sandbox_apply() once,
 * after the interpreter is ready and before it reads any user byte.
 */
#ifndef HELPER_SANDBOX_H
#define HELPER_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t memory_limit;      /* bytes above the current footprint */
    uint32_t cpu_seconds;       /* CPU time backstop for the whole session */
    const int *keep_fds;        /* descriptors that survive */
    int nkeep;
} pyexec_sandbox_opts_t;

/* Confine the calling process for good. Returns 0, or -1 with a reason
 * in err when a layer that must hold could not be put in place (the
 * helper then refuses to serve). `layers` receives a short
 * human-readable list of what is active. */
int pyexec_sandbox_apply(const pyexec_sandbox_opts_t *opts,
                         char *layers, size_t layers_len,
                         char *err, size_t err_len);

#endif /* HELPER_SANDBOX_H */
