/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor: one process forked from the httpd parent at
 * post_config. It owns the zygote and every session helper, keeps spare
 * helpers warm, enforces deadlines and idle expiry with SIGKILL from
 * outside, reaps and records why each helper ended. httpd restarts it
 * if it dies (other-child maintenance, as mod_cgid does).
 */
#ifndef PYEXEC_SUPERVISOR_H
#define PYEXEC_SUPERVISOR_H

#include <httpd.h>

/* Fork the supervisor; called in the parent from post_config. */
apr_status_t pyexec_supervisor_start(apr_pool_t *pconf, server_rec *s);

/* Worker side: fire-and-forget datagrams to the supervisor. */
void pyexec_supervisor_wake(void);
void pyexec_supervisor_kill(int32_t slot, uint32_t gen, int reason);

#endif /* PYEXEC_SUPERVISOR_H */
