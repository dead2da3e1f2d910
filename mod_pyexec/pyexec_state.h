/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The state every process of this httpd holds: httpd's parent sets it
 * up at post_config (pyexec_shared.c), and the supervisor and the MPM's
 * children inherit it through fork. The shared part lives in memory that
 * all of them map, under one global mutex; the rest is each process's
 * own copy.
 */
#ifndef PYEXEC_STATE_H
#define PYEXEC_STATE_H

#include <apr_global_mutex.h>
#include <apr_shm.h>

#include "pyexec_config.h"
#include "pyexec_ratelimit.h"
#include "pyexec_registry.h"
#include "pyexec_settings.h"

/* What a graceful restart keeps (pyexec_shared.c): the segment, what is
 * laid out in it, and its mutex. */
typedef struct {
    apr_shm_t *shm;
    pyexec_registry_t *reg;     /* the session table */
    pyexec_ratelimit_t *rl;     /* PyExecRateLimit's buckets */
    pyexec_settings_t *live;    /* the settings, for the supervisor */
    apr_global_mutex_t *mutex;  /* guards reg and rl */
    const char *mutex_file;
} pyexec_shared_t;

typedef struct {
    pyexec_shared_t shared;
    const char *sockdir;        /* helpers' sockets */
    const char *ctl_path;       /* the supervisor's datagram socket */
    pyexec_conf_t conf;         /* effective values, defaults resolved */
    int ctl_fd;                 /* a worker's socket for datagrams */
} pyexec_state_t;

extern pyexec_state_t pyexec_state;

/* Lock the registry; every caller checks the result (a failure is
 * logged here). */
apr_status_t pyexec_lock(void);
void pyexec_unlock(void);

#endif /* PYEXEC_STATE_H */
