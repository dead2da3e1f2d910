/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * mod_pyexec: run untrusted Python for web users and API clients.
 *
 * This file holds only the module record and the hook registrations;
 * each concern lives in its own file:
 *   pyexec_config.c      directives
 *   pyexec_shared.c      shared memory registry and its global mutex
 *   pyexec_supervisor.c  the process that owns every Python helper
 *   pyexec_handler.c     POST /execute, GET and DELETE of a session,
 *                        an operator's listing (pyexec-sessions)
 *   pyexec_status.c      our section of mod_status's /server-status
 *   helper_*.c           the pyexec-helper program (embeds CPython)
 */
#include <httpd.h>
#include <http_config.h>
#include <http_request.h>
#include <mod_status.h>

#include "pyexec_private.h"
#include "pyexec_handler.h"
#include "pyexec_shared.h"
#include "pyexec_status.h"

static const char *const rewrite_after[] = { "mod_rewrite.c", NULL };

static void pyexec_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(pyexec_shared_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(pyexec_shared_post_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_child_init(pyexec_shared_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* after the registry is attached */
    ap_hook_child_init(pyexec_handler_child_init, NULL, NULL, APR_HOOK_LAST);
    /* before any hook that could change the URI or stop the chain: ours
     * only notes the URI the <Location> configuration was found for */
    ap_hook_translate_name(pyexec_translate_name, NULL, rewrite_after,
                           APR_HOOK_FIRST);
    ap_hook_map_to_storage(pyexec_map_to_storage, NULL, NULL,
                           APR_HOOK_FIRST);
    ap_hook_handler(pyexec_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(pyexec_sessions_handler, NULL, NULL, APR_HOOK_MIDDLE);
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
