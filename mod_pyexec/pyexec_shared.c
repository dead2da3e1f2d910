/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The life of the shared state across httpd's generations. Runs in
 * httpd's parent (pre_config, post_config: as root, at every start and
 * restart) and in each worker process (child_init).
 *
 * post_config makes the shared segment, its mutex and the settings the
 * supervisor reads, and starts the supervisor; a graceful restart keeps
 * all three and the supervisor with its sessions, unless the new
 * configuration cannot be served by them.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>

#include "pyexec_private.h"
#include "pyexec_shared.h"
#include "pyexec_state.h"
#include "pyexec_supervisor.h"

/* Slots beyond sessions and spares, for helpers that have ended but
 * are not reaped yet. */
#define DYING_MARGIN 16
/* Clients tracked by PyExecRateLimit; more only forget the quietest. */
#define RATE_CLIENTS 4096

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

/* What a graceful restart keeps. httpd unloads and reloads this module
 * at every restart, so this lives in ap_retained_data, allocated in the
 * process pool, and nothing in it points into the module: no function,
 * no string literal.
 *
 * A graceful restart may also load a newer build of the module, whose
 * table or records are laid out differently. So the retained block
 * itself (the anchor) has a layout that never changes, and says which
 * layout the rest has; a build that finds another one stops the old
 * supervisor and starts afresh. */
typedef struct {
    uint32_t layout;            /* of what body points to */
    apr_pool_t *pool;           /* the body and what it holds live here */
    void *body;                 /* a pyexec_retained_t */
    /* here, not in pool: at exit the process pool destroys pool before
     * pconf, whose cleanup still needs this to stop the supervisor */
    apr_proc_t sup;             /* pid > 0 while a supervisor runs */
    int log_chan;               /* to the supervisor: new error logs */
} pyexec_anchor_t;

typedef struct {
    pyexec_shared_t shared;     /* what pyexec_state.shared becomes */
    const char *fixed;          /* settings a kept supervisor cannot take
                                   up (fixed_settings) */
    uint32_t nslots;            /* the table's size: it cannot grow */
} pyexec_retained_t;

#define RETAINED_KEY "mod_pyexec-retained"
/* Bump with any change in what a kept table, record or supervisor
 * means; the sizes below catch the changes one forgets to bump for. */
#define RETAINED_VERSION 5

static uint32_t retained_layout(void)
{
    /* FNV-1a over the version, the build's version, the sizes and where
     * a few fields sit (a field moved within a struct of the same size) */
    const size_t parts[] = {
        RETAINED_VERSION, PYEXEC_PROTO_VERSION, sizeof(pyexec_retained_t),
        sizeof(pyexec_registry_t), sizeof(pyexec_slot_t),
        sizeof(pyexec_settings_t), pyexec_ratelimit_size(RATE_CLIENTS),
        offsetof(pyexec_slot_t, state), offsetof(pyexec_slot_t, limits),
        offsetof(pyexec_slot_t, mem_bytes), offsetof(pyexec_registry_t, stats),
        offsetof(pyexec_settings_t, spawn),
    };
    const char *v = PYEXEC_VERSION;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        for (size_t b = 0; b < sizeof(size_t); b++) {
            h = (h ^ (uint32_t)((parts[i] >> (8 * b)) & 0xff)) * 16777619u;
        }
    }
    for (; *v; v++) {
        h = (h ^ (uint32_t)(unsigned char)*v) * 16777619u;
    }
    return h;
}

/* The settings that define the supervisor itself: when one changes,
 * even a graceful restart starts afresh. So does a table that would
 * have to grow. */
static const char *fixed_settings(apr_pool_t *p, const pyexec_conf_t *c)
{
    /* the zygote preloads the allowed packages: a new list needs a new
     * zygote, and sessions forked from the old one would not match it */
    return apr_psprintf(p, "PyExecHelper %s, PyExecSocketDir %s, "
                        "PyExecUser %s, PyExecGroup %s, "
                        "PyExecAllowModules %s",
                        c->helper_path, c->socket_dir,
                        c->helper_user ? c->helper_user : "-",
                        c->helper_group ? c->helper_group : "-",
                        c->allowed->nelts
                        ? apr_array_pstrcat(p, c->allowed, ' ') : "-");
}

/* A new segment, mutex and (not yet started) supervisor record. */
static apr_status_t retained_create(pyexec_anchor_t *anchor, server_rec *s,
                                    uint32_t nslots, const char *fixed)
{
    pyexec_retained_t *ret;
    pyexec_shared_t *sh;
    apr_size_t size, reg_size, rl_size;
    apr_status_t rv;
    char *base;

    if (anchor->pool) {
        apr_pool_destroy(anchor->pool); /* the old segment and mutex */
    }
    anchor->pool = NULL;
    anchor->body = NULL;
    rv = apr_pool_create(&anchor->pool, s->process->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_tag(anchor->pool, "pyexec_retained");
    ret = apr_pcalloc(anchor->pool, sizeof(*ret));
    sh = &ret->shared;
    memset(&anchor->sup, 0, sizeof(anchor->sup));
    anchor->body = ret;
    anchor->layout = retained_layout();
    reg_size = (pyexec_registry_size(nslots) + 63) & ~(apr_size_t)63;
    rl_size = (pyexec_ratelimit_size(RATE_CLIENTS) + 63) & ~(apr_size_t)63;
    size = reg_size + rl_size + sizeof(pyexec_settings_t);
    rv = apr_shm_create(&sh->shm, size, NULL, anchor->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00103) "cannot create %" APR_SIZE_T_FMT
                     " bytes of shared memory", size);
        return rv;
    }
    base = apr_shm_baseaddr_get(sh->shm);
    sh->reg = pyexec_registry_init(base, nslots);
    sh->rl = pyexec_ratelimit_init(base + reg_size, RATE_CLIENTS);
    sh->live = (pyexec_settings_t *)(base + reg_size + rl_size);
    memset(sh->live, 0, sizeof(*sh->live));

    rv = ap_global_mutex_create(&sh->mutex, &sh->mutex_file,
                                PYEXEC_MUTEX_TYPE, NULL, s, anchor->pool, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (sh->mutex_file) {
        sh->mutex_file = apr_pstrdup(anchor->pool, sh->mutex_file);
    }
    ret->fixed = apr_pstrdup(anchor->pool, fixed);
    ret->nslots = nslots;
    return APR_SUCCESS;
}

/* A front (PyExecFront) runs no code: no table, no supervisor. One kept
 * from a generation that was a backend ends, with its sessions. */
static int front_post_config(server_rec *s, const pyexec_conf_t *c)
{
    pyexec_anchor_t *anchor = ap_retained_data_get(RETAINED_KEY);

    if (anchor && anchor->sup.pid > 0) {
        pyexec_supervisor_stop(&anchor->sup);
    }
    if (anchor && anchor->pool) {
        apr_pool_destroy(anchor->pool);
        anchor->pool = NULL;
        anchor->body = NULL;
    }
    memset(&pyexec_state.shared, 0, sizeof(pyexec_state.shared));
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 PYEXEC_LOGNO(00110) "a front for %s: no Python runs here; "
                 "requests to it are routed by their session ids", c->front);
    return OK;
}

int pyexec_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_anchor_t *anchor;
    pyexec_retained_t *ret;
    const char *fixed;
    uint32_t nslots;
    apr_status_t rv;
    int keep;
    (void)plog;

    pyexec_conf_effective(pconf, s, c);
    if (c->front && c->route) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     PYEXEC_LOGNO(00109) "PyExecFront and PyExecRoute are "
                     "both set: a front holds no sessions, so it has no "
                     "route of its own");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* the first pass only checks the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (c->front) {
        return front_post_config(s, c);
    }
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
    fixed = fixed_settings(ptemp, c);

    anchor = ap_retained_data_get(RETAINED_KEY);
    if (!anchor) {
        anchor = ap_retained_data_create(RETAINED_KEY, sizeof(*anchor));
        anchor->log_chan = -1;
    }
    /* A supervisor still running here was spared by a graceful restart
     * (pyexec_supervisor.c stops it on any other) */
    keep = anchor->sup.pid > 0 && kill(anchor->sup.pid, 0) == 0;
    ret = anchor->body;
    if (keep && anchor->layout != retained_layout()) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     PYEXEC_LOGNO(00108) "graceful restart into a build "
                     "of mod_pyexec with another table layout: starting a "
                     "new supervisor; its sessions end");
        keep = 0;
    }
    else if (keep && (strcmp(ret->fixed, fixed) || nslots > ret->nslots)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     PYEXEC_LOGNO(00105) "graceful restart with %s, %u "
                     "slots (was %s, %u slots): starting a new supervisor; "
                     "its sessions end", fixed, nslots, ret->fixed,
                     ret->nslots);
        keep = 0;
    }
    if (!keep) {
        if (anchor->sup.pid > 0) {
            pyexec_supervisor_stop(&anchor->sup);
        }
        rv = retained_create(anchor, s, nslots, fixed);
        if (rv != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ret = anchor->body;
    }
    pyexec_state.shared = ret->shared;

    /* this generation's settings, for the supervisor to take up; not
     * under the registry lock, which a stuck worker could be holding */
    rv = pyexec_supervisor_publish_conf(ptemp, c, ret->shared.live);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00106) "PyExecBlockModules lists more "
                     "than %u names, or more than %u bytes of them",
                     PYEXEC_SPAWN_NAMES_COUNT_MAX, PYEXEC_SPAWN_NAMES_MAX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (keep) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     PYEXEC_LOGNO(00107) "graceful restart: supervisor %d "
                     "and %u sessions kept; new settings apply to new "
                     "sessions", (int)anchor->sup.pid,
                     ret->shared.reg->count[PYEXEC_SLOT_LIVE]);
        pyexec_supervisor_watch(pconf, s, &anchor->sup, &anchor->log_chan);
        pyexec_supervisor_send_log(anchor->log_chan, s);
        pyexec_supervisor_nudge(&anchor->sup);
        return OK;
    }
    rv = pyexec_supervisor_start(pconf, s, &anchor->sup, &anchor->log_chan);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void pyexec_shared_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!pyexec_state.shared.mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&pyexec_state.shared.mutex,
                                     pyexec_state.shared.mutex_file, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     PYEXEC_LOGNO(00104) "cannot attach the registry mutex");
        pyexec_state.shared.reg = NULL;
        return;
    }
    pyexec_state.ctl_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC
                                 | SOCK_NONBLOCK, 0);
}
