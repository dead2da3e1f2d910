/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * A mod_pyexec section in mod_status's /server-status, in HTML and in
 * the ?auto form that monitoring tools read. Everything comes from the
 * shared table, read under its lock in one go. Runs in httpd's workers.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <mod_status.h>

#include "pyexec_private.h"
#include "pyexec_state.h"
#include "pyexec_status.h"

typedef struct {
    uint32_t live, busy, spare, starting, dying, max_sessions;
    pyexec_reg_stats_t stats;
    uint32_t layers, failing;
} snapshot_t;

static int take_snapshot(snapshot_t *sn)
{
    pyexec_registry_t *reg = pyexec_state.shared.reg;

    memset(sn, 0, sizeof(*sn));
    if (!reg || pyexec_lock() != APR_SUCCESS) {
        return -1;
    }
    for (uint32_t i = 0; i < reg->nslots; i++) {
        const pyexec_slot_t *s = pyexec_reg_slot(reg, (int32_t)i);

        if (s->state == PYEXEC_SLOT_LIVE && s->inflight > 0) {
            sn->busy++;
        }
    }
    sn->live = reg->count[PYEXEC_SLOT_LIVE];
    sn->spare = reg->count[PYEXEC_SLOT_SPARE];
    sn->starting = reg->count[PYEXEC_SLOT_SPAWNING];
    sn->dying = reg->count[PYEXEC_SLOT_DYING];
    sn->stats = reg->stats;
    sn->layers = reg->sandbox_layers;
    sn->failing = reg->helpers_failing;
    pyexec_unlock();
    sn->max_sessions = (uint32_t)pyexec_state.conf.max_sessions;
    return 0;
}

/* The causes a session can end by, in the order the issue names them. */
static const pyexec_end_reason_t causes[] = {
    PYEXEC_END_IDLE, PYEXEC_END_TIMEOUT, PYEXEC_END_MEMORY,
    PYEXEC_END_CRASH, PYEXEC_END_DELETED, PYEXEC_END_EVICTED,
};
#define NCAUSES (sizeof(causes) / sizeof(causes[0]))

/* The refusal and enforcement counters, as ?auto names them and as the
 * HTML table says them. */
static const struct {
    const char *key;
    const char *label;
    size_t offset;              /* in pyexec_reg_stats_t */
} counters[] = {
    { "PyExecRateLimited", "Requests over the rate limit",
      APR_OFFSETOF(pyexec_reg_stats_t, rate_limited) },
    { "PyExecRejectedFull", "New sessions refused (table full)",
      APR_OFFSETOF(pyexec_reg_stats_t, rejected_full) },
    { "PyExecRejectedClient",
      "New sessions refused (client at PyExecMaxClientSessions)",
      APR_OFFSETOF(pyexec_reg_stats_t, rejected_client) },
    { "PyExecRejectedQueue", "Requests refused (session at PyExecMaxQueue)",
      APR_OFFSETOF(pyexec_reg_stats_t, rejected_queue) },
    { "PyExecSessionsEvictedIdle",
      "Idle sessions ended for new ones (PyExecEvictIdle)",
      APR_OFFSETOF(pyexec_reg_stats_t, evicted_lru) },
    { "PyExecCpuOverruns", "Helpers killed for CPU time outside their runs",
      APR_OFFSETOF(pyexec_reg_stats_t, cpu_overruns) },
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static uint64_t counter(const snapshot_t *sn, size_t i)
{
    return *(const uint64_t *)((const char *)&sn->stats
                               + counters[i].offset);
}

/* "timeout" -> "Timeout", "spawn-failed" -> "SpawnFailed" */
static const char *camel(apr_pool_t *p, const char *name)
{
    char *out = apr_pstrdup(p, name), *w = out;
    int up = 1;

    for (const char *c = name; *c; c++) {
        if (*c == '-') {
            up = 1;
            continue;
        }
        *w++ = up ? (char)apr_toupper(*c) : *c;
        up = 0;
    }
    *w = '\0';
    return out;
}

static void status_auto(request_rec *r, const snapshot_t *sn,
                        const char *layers, const char *missing)
{
    ap_rprintf(r, "PyExecSessionsLive: %u\n", sn->live);
    ap_rprintf(r, "PyExecSessionsMax: %u\n", sn->max_sessions);
    ap_rprintf(r, "PyExecHelpersBusy: %u\n", sn->busy);
    ap_rprintf(r, "PyExecHelpersSpare: %u\n", sn->spare);
    ap_rprintf(r, "PyExecHelpersStarting: %u\n", sn->starting);
    ap_rprintf(r, "PyExecHelpersEnding: %u\n", sn->dying);
    ap_rprintf(r, "PyExecHelpersSpawned: %" APR_UINT64_T_FMT "\n",
               sn->stats.helpers_spawned);
    ap_rprintf(r, "PyExecHelpersFailing: %s\n", sn->failing ? "yes" : "no");
    ap_rprintf(r, "PyExecSessionsCreated: %" APR_UINT64_T_FMT "\n",
               sn->stats.sessions_created);
    for (size_t i = 0; i < NCAUSES; i++) {
        ap_rprintf(r, "PyExecSessionsEnded%s: %" APR_UINT64_T_FMT "\n",
                   camel(r->pool, pyexec_end_reason_name(causes[i])),
                   sn->stats.sessions_ended[causes[i]]);
    }
    ap_rprintf(r, "PyExecExecutions: %" APR_UINT64_T_FMT "\n",
               sn->stats.executions);
    for (size_t i = 0; i < NCOUNTERS; i++) {
        ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n", counters[i].key,
                   counter(sn, i));
    }
    ap_rprintf(r, "PyExecSandbox: %s\n", layers);
    ap_rprintf(r, "PyExecSandboxUnavailable: %s\n", missing);
}

static void row(request_rec *r, const char *name, const char *value)
{
    ap_rprintf(r, "<tr><th scope=\"row\">%s</th><td>%s</td></tr>\n", name,
               value);
}

static void status_html(request_rec *r, const snapshot_t *sn,
                        const char *layers, const char *missing)
{
    apr_pool_t *p = r->pool;

    ap_rputs("<hr />\n<h2>mod_pyexec</h2>\n<table>\n", r);
    row(r, "Live sessions", apr_psprintf(p, "%u of at most %u", sn->live,
                                         sn->max_sessions));
    row(r, "Helpers running code", apr_psprintf(p, "%u", sn->busy));
    row(r, "Spare helpers", apr_psprintf(p, "%u ready, %u starting",
                                         sn->spare, sn->starting));
    row(r, "Helpers ending", apr_psprintf(p, "%u", sn->dying));
    row(r, "Helpers started", apr_psprintf(p, "%" APR_UINT64_T_FMT
                                           "%s", sn->stats.helpers_spawned,
                                           sn->failing ? " (new ones are "
                                           "failing to start: see the "
                                           "error log)" : ""));
    row(r, "Sessions created", apr_psprintf(p, "%" APR_UINT64_T_FMT,
                                            sn->stats.sessions_created));
    for (size_t i = 0; i < NCAUSES; i++) {
        row(r, apr_psprintf(p, "Sessions ended: %s",
                            pyexec_end_reason_name(causes[i])),
            apr_psprintf(p, "%" APR_UINT64_T_FMT,
                         sn->stats.sessions_ended[causes[i]]));
    }
    row(r, "Executions", apr_psprintf(p, "%" APR_UINT64_T_FMT,
                                      sn->stats.executions));
    for (size_t i = 0; i < NCOUNTERS; i++) {
        row(r, counters[i].label,
            apr_psprintf(p, "%" APR_UINT64_T_FMT, counter(sn, i)));
    }
    row(r, "Sandbox layers", ap_escape_html(p, layers));
    row(r, "Sandbox layers this host cannot give", ap_escape_html(p, missing));
    ap_rputs("</table>\n", r);
}

int pyexec_status_hook(request_rec *r, int flags)
{
    snapshot_t sn;
    char layers[256], missing[256];
    const char *unavailable;

    if (pyexec_state.conf.front) {
        /* a front has no table: what it is, for whoever reads the page */
        if (flags & AP_STATUS_SHORT) {
            ap_rprintf(r, "PyExecFront: %s\n", pyexec_state.conf.front);
        }
        else {
            ap_rputs("<hr />\n<h2>mod_pyexec</h2>\n<table>\n", r);
            row(r, "Front for", ap_escape_html(r->pool,
                                               pyexec_state.conf.front));
            ap_rputs("</table>\n", r);
        }
        return OK;
    }
    if (take_snapshot(&sn) != 0) {
        return OK;              /* not running here: nothing to show */
    }
    pyexec_layers_format(sn.layers, layers, sizeof(layers));
    pyexec_layers_format(PYEXEC_LAYERS_ALL & ~sn.layers, missing,
                         sizeof(missing));
    /* no helper has said what it holds yet (or every one refused) */
    unavailable = !sn.layers ? "unknown" : missing[0] ? missing : "none";
    if (flags & AP_STATUS_SHORT) {
        status_auto(r, &sn, layers[0] ? layers : "none", unavailable);
    }
    else {
        status_html(r, &sn, layers[0] ? layers : "none", unavailable);
    }
    return OK;
}
