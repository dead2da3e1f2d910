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

#include "pyexec_private.h"

/* Parent side, from post_config. Fork the supervisor into proc, or watch
 * one kept from the previous generation (restarted should it die); stop
 * one, waiting for it. *log_chan persists across generations (retained
 * data), -1 before the first start. */
apr_status_t pyexec_supervisor_start(apr_pool_t *pconf, server_rec *s,
                                     apr_proc_t *proc, int *log_chan);
void pyexec_supervisor_watch(apr_pool_t *pconf, server_rec *s,
                             apr_proc_t *proc, int *log_chan);
/* Hand a kept supervisor this generation's error log (log_chan: the
 * parent's end of the channel, kept in *log_chan by start). */
void pyexec_supervisor_send_log(int log_chan, server_rec *s);
void pyexec_supervisor_stop(apr_proc_t *proc);
/* Have a kept supervisor take up newly published settings at once. */
void pyexec_supervisor_nudge(const apr_proc_t *proc);

/* Write this generation's settings for the supervisor (under the lock);
 * APR_ENOSPC if the block list does not fit. */
apr_status_t pyexec_supervisor_publish_conf(const pyexec_conf_t *c,
                                            pyexec_live_conf_t *live);

/* Worker side: fire-and-forget datagrams to the supervisor. */
void pyexec_supervisor_wake(void);
void pyexec_supervisor_kill(int32_t slot, uint32_t gen, int reason);

#endif /* PYEXEC_SUPERVISOR_H */
