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

#endif /* PYEXEC_PRIVATE_H */
