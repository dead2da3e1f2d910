/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * SetHandler pyexec-health: whether this host can start a session now,
 * for mod_proxy_hcheck's hcuri on a front (200 yes, 503 no) and for
 * anyone's monitoring, with the reason in JSON. Runs in httpd's
 * workers; reads the shared table under its lock, in one go.
 *
 * mod_proxy_balancer has one state per member: a member that fails its
 * check is skipped by new sessions and, with nofailover, its sessions'
 * requests get 503 too. So a host that merely cannot start a session
 * (its table full, its interpreters failing) but holds sessions must not
 * fail the check the balancer asks, or its users lose them while it is
 * up: ?sessions=keep asks "should the balancer keep this host", which is
 * no only when the host cannot serve at all (supervisor gone) or cannot
 * start a session and holds none. The shipped front asks that; the plain
 * URL answers the strict question.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <http_protocol.h>

#include "pyexec_private.h"
#include "pyexec_handler.h"
#include "pyexec_health.h"
#include "pyexec_io.h"
#include "pyexec_request.h"
#include "pyexec_state.h"

/* Scans come every 200 ms: ten missed is a supervisor gone or stuck. */
#define SUPERVISOR_SILENT_US 2000000

typedef struct {
    int64_t since_sweep;
    uint32_t live, spare, idle, failing;
} health_t;

static int read_health(health_t *h)
{
    pyexec_registry_t *reg = pyexec_state.shared.reg;

    memset(h, 0, sizeof(*h));
    if (!reg || pyexec_state.ctl_fd < 0 || pyexec_lock() != APR_SUCCESS) {
        return -1;
    }
    h->since_sweep = pyexec_now_usec() - reg->last_sweep;
    h->live = reg->count[PYEXEC_SLOT_LIVE];
    h->spare = reg->count[PYEXEC_SLOT_SPARE];
    h->failing = reg->helpers_failing;
    /* an idle session matters only to a full table that may evict one */
    for (uint32_t i = 0; pyexec_state.conf.evict_idle && i < reg->nslots;
         i++) {
        const pyexec_slot_t *s = pyexec_reg_slot(reg, (int32_t)i);

        if (s->state == PYEXEC_SLOT_LIVE && s->inflight == 0) {
            h->idle++;
        }
    }
    pyexec_unlock();
    return 0;
}

/* NULL if the host can serve its sessions (the supervisor scans); else
 * why not. */
static const char *why_down(const health_t *h)
{
    if (h->since_sweep > SUPERVISOR_SILENT_US) {
        return "The supervisor is not running or not answering: no new "
               "interpreter can start, no run can be stopped.";
    }
    return NULL;
}

/* NULL if a new session could start now, else why not. A spare taken a
 * moment ago and not yet replaced is no reason: a new session waits for
 * the next one. */
static const char *why_no_new(const health_t *h)
{
    const pyexec_conf_t *c = &pyexec_state.conf;

    if (h->failing) {
        return "New interpreters fail to start (the sandbox was refused, "
               "or the helper is broken): see the error log.";
    }
    if (h->live >= (uint32_t)c->max_sessions
        && !(c->evict_idle && h->idle > 0)) {
        return "The session table is full (PyExecMaxSessions).";
    }
    return NULL;
}

int pyexec_health_handler(request_rec *r)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    const char *down, *no_new, *route;
    int keep, up;
    health_t h;
    char *body;

    if (!r->handler || strcmp(r->handler, PYEXEC_HEALTH_HANDLER)) {
        return DECLINED;
    }
    keep = r->args && !strcmp(r->args, "sessions=keep");
    if (read_health(&h) != 0) {
        down = "The Python execution service is not running here.";
        no_new = down;
    }
    else {
        down = why_down(&h);
        no_new = down ? down : why_no_new(&h);
    }
    up = !no_new || (keep && !down && h.live > 0);
    route = c->route ? apr_psprintf(r->pool, "\"%s\"", c->route) : "null";
    body = apr_psprintf(r->pool, "{\"status\":\"%s\",\"route\":%s,"
                        "\"can_start\":%s,\"sessions\":%u,"
                        "\"max_sessions\":%d,\"spare\":%u",
                        up ? "ok" : "unavailable", route,
                        no_new ? "false" : "true", h.live, c->max_sessions,
                        h.spare);
    if (no_new) {
        char *err = pyexec_response_json(NULL, NULL, 0, NULL, 0, no_new);

        if (!err) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* {"error": ...} joined on */
        body = apr_pstrcat(r->pool, body, ",", err + 1, NULL);
        free(err);
    }
    else {
        body = apr_pstrcat(r->pool, body, "}", NULL);
    }
    return pyexec_send_json(r, up ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE, body);
}
