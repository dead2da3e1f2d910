/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * What the files of the pyexec-helper program share: helper_main.c (the
 * program, the zygote, --run) and helper_serve.c (a session helper).
 */
#ifndef HELPER_MAIN_H
#define HELPER_MAIN_H

#include <stddef.h>
#include <stdint.h>

#include "pyexec_protocol.h"

/* "pyexec-helper[pid]: <fmt with arg>" on stderr, then _exit(code). */
void pyexec_helper_die(int code, const char *fmt, const char *arg)
    __attribute__((noreturn));

/* A session helper, just forked by the zygote: set up its session,
 * confine itself, say READY on chan, then serve requests on lfd until it
 * is killed. sp is its SPAWN; blocked the module names it carried;
 * layers what pyexec_sandbox_fork() obtained. Never returns. */
void pyexec_helper_serve(int chan, int lfd, const pyexec_spawn_t *sp,
                         const char *const *blocked, size_t nblocked,
                         uint32_t layers) __attribute__((noreturn));

#endif /* HELPER_MAIN_H */
