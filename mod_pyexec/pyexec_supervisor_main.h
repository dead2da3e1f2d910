/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor process's way in, for pyexec_supervisor_start().
 */
#ifndef PYEXEC_SUPERVISOR_MAIN_H
#define PYEXEC_SUPERVISOR_MAIN_H

#include <sys/types.h>

#include <httpd.h>

/* Exit status that tells httpd's parent not to start the supervisor
 * again: the configuration is at fault, and a new one would fail the
 * same way. */
#define PYEXEC_SUPERVISOR_STARTUP_ERROR 254

/* In the child of apr_proc_fork(), still root when httpd started as
 * root. log_fd is the supervisor's end of the channel the parent hands
 * new error logs on (-1: none); httpd_pid is that parent. Never
 * returns. */
void pyexec_supervisor_main(server_rec *s, apr_pool_t *p, int log_fd,
                            pid_t httpd_pid) __attribute__((noreturn));

#endif /* PYEXEC_SUPERVISOR_MAIN_H */
