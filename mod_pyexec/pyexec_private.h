/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Private to the httpd side of mod_pyexec: the module declaration for
 * per-module LogLevel, our log tag, and the state every process of this
 * httpd shares.
 */
#ifndef PYEXEC_PRIVATE_H
#define PYEXEC_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_global_mutex.h>
#include <apr_shm.h>

#include "pyexec_config.h"
#include "pyexec_ratelimit.h"
#include "pyexec_registry.h"

APLOG_USE_MODULE(pyexec);
extern module AP_MODULE_DECLARE_DATA pyexec_module;

/* Our own message tags: "AHnnnnn" belongs to httpd. */
#define PYEXEC_LOGNO(n) "PYX" #n ": "

/* Name of our mutex for the standard `Mutex` directive. */
#define PYEXEC_MUTEX_TYPE "pyexec-registry"

/* The handler name: SetHandler pyexec */
#define PYEXEC_HANDLER "pyexec"

/*
 * Set up in post_config and inherited by every child through fork:
 * the supervisor, the MPM's children.
 */
typedef struct {
    apr_shm_t *shm;
    pyexec_registry_t *reg;
    pyexec_ratelimit_t *rl;
    apr_global_mutex_t *mutex;
    const char *mutex_file;
    const char *sockdir;        /* helpers' sockets */
    const char *ctl_path;       /* the supervisor's datagram socket */
    pyexec_conf_t conf;         /* effective values, defaults resolved */
    int ctl_fd;                 /* a child's socket for datagrams */
} pyexec_state_t;

extern pyexec_state_t pyexec_state;

/* Lock the registry; every caller checks the result. */
apr_status_t pyexec_lock(void);
void pyexec_unlock(void);

#endif /* PYEXEC_PRIVATE_H */
