/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The process-wide state and the registry's lock. Runs in every process
 * of this httpd: its parent, its workers and the supervisor.
 */
#include <http_main.h>

#include "pyexec_private.h"
#include "pyexec_state.h"

pyexec_state_t pyexec_state = { .ctl_fd = -1 };

apr_status_t pyexec_lock(void)
{
    apr_status_t rv = apr_global_mutex_lock(pyexec_state.shared.mutex);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, ap_server_conf,
                     PYEXEC_LOGNO(00101) "cannot lock the session registry");
    }
    return rv;
}

void pyexec_unlock(void)
{
    apr_global_mutex_unlock(pyexec_state.shared.mutex);
}
