/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Private to the httpd side of mod_pyexec: the module declaration for
 * per-module LogLevel, our log tag and the names the configuration uses.
 */
#ifndef PYEXEC_PRIVATE_H
#define PYEXEC_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

APLOG_USE_MODULE(pyexec);
extern module AP_MODULE_DECLARE_DATA pyexec_module;

/* Our own message tags: "AHnnnnn" belongs to httpd. Each number is used
 * once (tests/integration/test_docs.py checks, and docs/operations.md
 * says what each means). */
#define PYEXEC_LOGNO(n) "PYX" #n ": "

/* Name of our mutex for the standard `Mutex` directive. */
#define PYEXEC_MUTEX_TYPE "pyexec-registry"

/* The handler name: SetHandler pyexec */
#define PYEXEC_HANDLER "pyexec"
/* An operator's listing of every session: SetHandler pyexec-sessions */
#define PYEXEC_SESSIONS_HANDLER "pyexec-sessions"
/* mod_proxy_hcheck's hcuri on a backend: SetHandler pyexec-health */
#define PYEXEC_HEALTH_HANDLER "pyexec-health"
/* The front's own errors as JSON (ErrorDocument): SetHandler pyexec-error */
#define PYEXEC_ERROR_HANDLER "pyexec-error"

/* Where a GET or DELETE may carry its session id, out of the URL. */
#define PYEXEC_SESSION_HEADER "PyExec-Session"
/* A new session's route (PyExecRoute), for the balancer's stickysession */
#define PYEXEC_ROUTE_COOKIE   "PYEXEC_ROUTE"
/* ... and the URL parameter that may carry it instead (?route=.<name>) */
#define PYEXEC_ROUTE_PARAM    "route"

#endif /* PYEXEC_PRIVATE_H */
