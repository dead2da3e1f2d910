/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#ifndef PYEXEC_CONFIG_H
#define PYEXEC_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>

/* Server-wide settings: one supervisor serves every virtual host, so
 * every directive is allowed in the main server config only. Unset
 * values are -1 / NULL until pyexec_conf_effective() resolves them. */
typedef struct {
    const char *helper_path;
    const char *socket_dir;
    apr_interval_time_t timeout;        /* per execution */
    apr_interval_time_t idle_timeout;
    apr_int64_t memory_limit;           /* bytes */
    apr_int64_t max_output;             /* bytes per stream */
    apr_int64_t max_display;            /* bytes of rich output per run */
    apr_int64_t max_code;               /* bytes of source */
    int max_sessions;
    int max_client_sessions;            /* live per client address; 0 off */
    int max_queue;                      /* requests waiting per session */
    int evict_idle;                     /* table full: end the LRU idle */
    int spare_helpers;
    double rate_limit;                  /* requests/s per client; 0 off */
    int rate_burst;
    int require_sandbox;                /* -1 unset: on when root */
    const char *helper_user;            /* NULL: httpd's User */
    const char *helper_group;
    int no_import_hook;                 /* tests only */
    int skip_layers;                    /* tests only: PYEXEC_SPAWN_SKIP_* */
    const char *route;                  /* PyExecRoute, or NULL */
    const char *front;                  /* PyExecFront: balancer://<name>
                                           without a trailing '/', or NULL */
    apr_array_header_t *blocked;        /* const char * */
    apr_array_header_t *allowed;        /* const char *: installed packages
                                           made importable (and preloaded) */
} pyexec_conf_t;

#define PYEXEC_BALANCER_PREFIX "balancer://"

extern const command_rec pyexec_cmds[];

void *pyexec_conf_create(apr_pool_t *p, server_rec *s);

/* The main server's settings with defaults filled in. */
void pyexec_conf_effective(apr_pool_t *p, server_rec *s, pyexec_conf_t *out);

#endif /* PYEXEC_CONFIG_H */
