/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>

#include "pyexec_private.h"
#include "pyexec_shared.h"
#include "pyexec_supervisor.h"

/* Slots beyond sessions and spares, for helpers that have ended but
 * are not reaped yet. */
#define DYING_MARGIN 16
/* Clients tracked by PyExecRateLimit; more only forget the quietest. */
#define RATE_CLIENTS 4096

pyexec_state_t pyexec_state = { .ctl_fd = -1 };

apr_status_t pyexec_lock(void)
{
    apr_status_t rv = apr_global_mutex_lock(pyexec_state.mutex);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, ap_server_conf,
                     PYEXEC_LOGNO(00101) "cannot lock the session registry");
    }
    return rv;
}

void pyexec_unlock(void)
{
    apr_global_mutex_unlock(pyexec_state.mutex);
}

int pyexec_shared_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    /* so that the standard Mutex directive can configure ours */
    return ap_mutex_register(pconf, PYEXEC_MUTEX_TYPE, NULL,
                             APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int pyexec_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    pyexec_conf_t *c = &pyexec_state.conf;
    apr_size_t size, reg_size;
    uint32_t nslots;
    apr_status_t rv;
    (void)plog;
    (void)ptemp;

    /* the first pass only checks the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    pyexec_conf_effective(pconf, s, c);
    if (access(c->helper_path, X_OK) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     PYEXEC_LOGNO(00102) "PyExecHelper %s is not an "
                     "executable program", c->helper_path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    pyexec_state.sockdir = c->socket_dir;
    pyexec_state.ctl_path = apr_pstrcat(pconf, c->socket_dir,
                                        "/supervisor.sock", NULL);

    nslots = (uint32_t)c->max_sessions + (uint32_t)c->spare_helpers
             + DYING_MARGIN;
    reg_size = (pyexec_registry_size(nslots) + 63) & ~(apr_size_t)63;
    size = reg_size + pyexec_ratelimit_size(RATE_CLIENTS);
    rv = apr_shm_create(&pyexec_state.shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00103) "cannot create %" APR_SIZE_T_FMT
                     " bytes of shared memory", size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    pyexec_state.reg = pyexec_registry_init(
        apr_shm_baseaddr_get(pyexec_state.shm), nslots);
    pyexec_state.rl = pyexec_ratelimit_init(
        (char *)apr_shm_baseaddr_get(pyexec_state.shm) + reg_size,
        RATE_CLIENTS);

    rv = ap_global_mutex_create(&pyexec_state.mutex,
                                &pyexec_state.mutex_file, PYEXEC_MUTEX_TYPE,
                                NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    rv = pyexec_supervisor_start(pconf, s);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void pyexec_shared_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!pyexec_state.mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&pyexec_state.mutex,
                                     pyexec_state.mutex_file, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00104) "cannot attach the registry mutex");
        pyexec_state.reg = NULL;
        return;
    }
    pyexec_state.ctl_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC
                                 | SOCK_NONBLOCK, 0);
}
