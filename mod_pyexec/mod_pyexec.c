/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * mod_pyexec: run untrusted Python for web users and API clients.
 *
 * This file holds only the module record and the hook registrations;
 * each concern lives in its own file (docs/architecture.md has the
 * whole map).
 *
 * In httpd's parent, as root, at start and at every restart:
 *   pyexec_config.c           directives
 *   pyexec_shared.c           the shared segment and mutex, kept over a
 *                             graceful restart; starts the supervisor
 *   pyexec_supervisor.c       start, watch and stop the supervisor, hand
 *                             it settings (also: workers' datagrams to it)
 * In httpd's workers, as User, for each request:
 *   pyexec_handler.c          the HTTP face: POST /execute, GET and DELETE
 *                             of a session, an operator's listing; ids
 *                             out of request lines and queries
 *   pyexec_bridge.c           a worker's end of a session: attach or
 *                             claim, EXEC, the deadline, the outcome
 *   pyexec_health.c           can this host start a session? (the
 *                             balancer's health check)
 *   pyexec_front.c            on a front (PyExecFront): the route of a
 *                             request's session id, for mod_proxy_balancer;
 *                             the front's errors as JSON
 *   pyexec_status.c           our section of mod_status's /server-status
 * In every process of this httpd:
 *   pyexec_state.c            the process-wide state and the registry lock
 * In the supervisor process, forked from the parent:
 *   pyexec_supervisor_main.c  its start-up, privileges, loop and scan
 *   pyexec_supervisor_spawn.c the zygote, new helpers, reaping
 *   pyexec_supervisor_cpu.c   helpers' CPU time against their sessions'
 *                             time in flight
 * Without httpd (libpyexec_core: the module, the helper, the unit tests
 * and the fuzzers):
 *   pyexec_registry.c         the session table in shared memory
 *   pyexec_settings.c         the settings the supervisor takes up
 *   pyexec_protocol.c, pyexec_io.c   frames and their I/O
 *   pyexec_request.c, pyexec_id.c    the JSON contract, session ids
 *   pyexec_ratelimit.c        PyExecRateLimit's buckets
 * The pyexec-helper program (the only one that embeds CPython):
 *   helper_*.c, sandbox_linux.c
 */
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

#include "pyexec_private.h"
#include "pyexec_bridge.h"
#include "pyexec_config.h"
#include "pyexec_front.h"
#include "pyexec_handler.h"
#include "pyexec_health.h"
#include "pyexec_shared.h"
#include "pyexec_status.h"

static const char *const rewrite_after[] = { "mod_rewrite.c", NULL };
static const char *const proxy_first[] = { "mod_proxy.c", NULL };

static void pyexec_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(pyexec_shared_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(pyexec_shared_post_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_child_init(pyexec_shared_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* after the registry is attached */
    ap_hook_child_init(pyexec_bridge_child_init, NULL, NULL, APR_HOOK_LAST);
    /* after the others have seen the request as read, before the MPM
     * copies its line to the scoreboard */
    ap_hook_post_read_request(pyexec_post_read_request, NULL, NULL,
                              APR_HOOK_REALLY_LAST);
    /* before any hook that could change the URI or stop the chain: ours
     * cleans the ids out of a request for the endpoint and notes the URI
     * the <Location> configuration was found for */
    ap_hook_translate_name(pyexec_translate_name, NULL, rewrite_after,
                           APR_HOOK_FIRST);
    ap_hook_map_to_storage(pyexec_map_to_storage, NULL, NULL,
                           APR_HOOK_FIRST);
    ap_hook_handler(pyexec_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(pyexec_sessions_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(pyexec_health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* on a front: once mod_proxy has made the URL the balancer reads */
    ap_hook_fixups(pyexec_front_fixups, proxy_first, NULL, APR_HOOK_LAST);
    ap_hook_handler(pyexec_error_handler, NULL, NULL, APR_HOOK_MIDDLE);
    pyexec_front_register();
    /* called only if mod_status is loaded */
    APR_OPTIONAL_HOOK(ap, status_hook, pyexec_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

/* not AP_DECLARE_MODULE: pyexec_private.h already declares APLOG_USE_MODULE */
module AP_MODULE_DECLARE_DATA pyexec_module = {
    STANDARD20_MODULE_STUFF,
    NULL,                   /* per-directory config: none */
    NULL,
    pyexec_conf_create,     /* per-server config */
    NULL,                   /* directives are main-server only */
    pyexec_cmds,
    pyexec_register_hooks,
    AP_MODULE_FLAG_NONE
};
