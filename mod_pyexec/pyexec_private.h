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
#include "pyexec_protocol.h"
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
/* An operator's listing of every session: SetHandler pyexec-sessions */
#define PYEXEC_SESSIONS_HANDLER "pyexec-sessions"

/* What the supervisor takes from the configuration, written by httpd's
 * parent into shared memory at every start and restart: a supervisor
 * kept over a graceful restart takes the new values from here (it checks
 * gen on every scan). Values a session is created with are copied into
 * its slot, so a session keeps the limits it started with. */
#define PYEXEC_SPAWN_TMPL_MAX (PYEXEC_FRAME_HDR_LEN + 65536)

typedef struct {
    uint32_t gen;               /* bumped at every write */
    uint32_t spare_helpers;
    uint32_t max_sessions;
    uint32_t spawn_len;
    int64_t  idle_timeout;      /* usec */
    int64_t  timeout;           /* usec, per execution */
    uint32_t max_output;
    uint32_t max_code;
    unsigned char spawn[PYEXEC_SPAWN_TMPL_MAX]; /* SPAWN frame, slot and
                                                   gen left blank */
} pyexec_live_conf_t;

/*
 * Set up in post_config and inherited by every child through fork:
 * the supervisor, the MPM's children. Over a graceful restart the
 * segment, the mutex and the supervisor are kept (pyexec_shared.c).
 */
typedef struct {
    apr_shm_t *shm;
    pyexec_registry_t *reg;
    pyexec_ratelimit_t *rl;
    pyexec_live_conf_t *live;
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
