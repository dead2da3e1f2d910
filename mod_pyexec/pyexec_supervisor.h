/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor: one process forked from httpd's parent at post_config
 * (pyexec_supervisor_main.c). It owns the zygote and every session
 * helper, keeps spare helpers warm, enforces deadlines and idle expiry
 * with SIGKILL from outside, reaps and records why each helper ended.
 * httpd restarts it if it dies (other-child maintenance, as mod_cgid
 * does).
 *
 * This is what httpd's own processes call of it (pyexec_supervisor.c).
 */
#ifndef PYEXEC_SUPERVISOR_H
#define PYEXEC_SUPERVISOR_H

#include <httpd.h>

#include "pyexec_config.h"
#include "pyexec_settings.h"

/* --- httpd's parent, as root ----------------------------------------- */

/* From post_config. Fork the supervisor into proc, or watch one kept from
 * the previous generation (restarted should it die); stop one, waiting
 * for it. *log_chan persists across generations (retained data), -1
 * before the first start. */
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

/* Write this generation's settings for the supervisor; APR_ENOSPC if
 * the block list does not fit. */
apr_status_t pyexec_supervisor_publish_conf(apr_pool_t *ptemp,
                                            const pyexec_conf_t *c,
                                            pyexec_settings_t *live);

/* --- httpd's workers ------------------------------------------------- */

/* Fire-and-forget datagrams: spares were taken (refill now); end the
 * helper of slot and gen for reason (a pyexec_end_reason_t). */
void pyexec_supervisor_wake(void);
void pyexec_supervisor_kill(int32_t slot, uint32_t gen, int reason);

#endif /* PYEXEC_SUPERVISOR_H */
