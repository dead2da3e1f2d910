/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The directives, read in httpd's parent (as root) as it parses the
 * configuration, at start and at every restart, and their effective
 * values.
 */
#include <apr_strings.h>
#include <apr_lib.h>
#include <unistd.h>

#include "pyexec_private.h"
#include "pyexec_config.h"
#include "pyexec_defaults.h"
#include "pyexec_id.h"
#include "pyexec_protocol.h"

static const char *const default_blocked[] = { PYEXEC_DEFAULT_BLOCKED_MODULES };

void *pyexec_conf_create(apr_pool_t *p, server_rec *s)
{
    pyexec_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)s;

    c->timeout = -1;
    c->idle_timeout = -1;
    c->memory_limit = -1;
    c->max_output = -1;
    c->max_display = -1;
    c->max_code = -1;
    c->max_sessions = -1;
    c->max_client_sessions = -1;
    c->max_queue = -1;
    c->evict_idle = -1;
    c->spare_helpers = -1;
    c->require_sandbox = -1;
    c->no_import_hook = -1;
    c->rate_limit = -1;
    return c;
}

/* Every directive is main-server only (one supervisor serves all
 * virtual hosts): the server config, or why this is the wrong place. */
static const char *global_conf(cmd_parms *cmd, pyexec_conf_t **c)
{
    *c = ap_get_module_config(cmd->server->module_config, &pyexec_module);
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

/* "64K", "100M", "1G" or plain bytes. */
static const char *parse_size(cmd_parms *cmd, const char *arg,
                              apr_int64_t min, apr_int64_t *out)
{
    char *end;
    apr_int64_t v;

    if (!apr_isdigit(*arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size (use bytes "
                            "or a K, M or G suffix)", cmd->cmd->name, arg);
    }
    v = apr_strtoi64(arg, &end, 10);
    switch (apr_toupper(*end)) {
    case 'K': v *= 1024; end++; break;
    case 'M': v *= 1024 * 1024; end++; break;
    case 'G': v *= 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') {
        end++;
    }
    if (*end || v < min || v > ((apr_int64_t)1 << 40)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size of at least "
                            "%" APR_INT64_T_FMT " bytes", cmd->cmd->name,
                            arg, min);
    }
    *out = v;
    return NULL;
}

static const char *set_size(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    apr_int64_t *field = (apr_int64_t *)((char *)c
                                         + (size_t)cmd->info);
    (void)dc;

    if (err) {
        return err;
    }
    /* no rich output at all is a choice; less than 1K of text is not */
    err = parse_size(cmd, arg, (size_t)cmd->info
                     == APR_OFFSETOF(pyexec_conf_t, max_display) ? 0 : 1024,
                     field);
    /* output and code travel in one frame each: keep them well inside
     * PYEXEC_FRAME_MAX_PAYLOAD */
    if (!err && *field > 16 * 1024 * 1024
        && (size_t)cmd->info != APR_OFFSETOF(pyexec_conf_t, memory_limit)) {
        return apr_psprintf(cmd->pool, "%s: at most 16M", cmd->cmd->name);
    }
    return err;
}

static const char *set_interval(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    apr_interval_time_t *field = (apr_interval_time_t *)((char *)c
                                                         + (size_t)cmd->info);
    (void)dc;

    if (err) {
        return err;
    }
    if (ap_timeout_parameter_parse(arg, field, "s") != APR_SUCCESS
        || *field <= 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive duration "
                            "(seconds, or with an ms suffix)", cmd->cmd->name,
                            arg);
    }
    return NULL;
}

static const char *set_count(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    int *field = (int *)((char *)c + (size_t)cmd->info);
    char *end;
    long v;
    (void)dc;

    if (err) {
        return err;
    }
    v = strtol(arg, &end, 10);
    if (*end || v < 0 || v > 100000) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from 0 to "
                            "100000", cmd->cmd->name, arg);
    }
    if (v == 0 && ((size_t)cmd->info == APR_OFFSETOF(pyexec_conf_t,
                                                      max_sessions)
                   || (size_t)cmd->info == APR_OFFSETOF(pyexec_conf_t,
                                                         spare_helpers))) {
        return apr_psprintf(cmd->pool, "%s must be at least 1",
                            cmd->cmd->name);
    }
    *field = (int)v;
    return NULL;
}

/* A count, or off (0). */
static const char *set_count_or_off(cmd_parms *cmd, void *dc,
                                    const char *arg)
{
    if (!strcasecmp(arg, "off")) {
        arg = "0";
    }
    return set_count(cmd, dc, arg);
}

static const char *set_name(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);

    (void)dc;
    if (err) {
        return err;
    }
    *(const char **)((char *)c + (size_t)cmd->info) = arg;
    return NULL;
}

/* PyExecRoute <name>: the balancer's route= for this host. */
static const char *set_route(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);

    (void)dc;
    if (err) {
        return err;
    }
    if (!pyexec_route_valid(arg, strlen(arg))) {
        return apr_psprintf(cmd->pool, "PyExecRoute: '%s' is not a route: "
                            "1 to %d letters, digits, '_' or '-'", arg,
                            PYEXEC_ROUTE_MAX);
    }
    c->route = arg;
    return NULL;
}

/* PyExecFront balancer://<name>: the balancer whose requests this front
 * routes by their session ids. */
static const char *set_front(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    size_t n = strlen(arg);
    (void)dc;

    if (err) {
        return err;
    }
    while (n > 0 && arg[n - 1] == '/') {
        n--;
    }
    if (n <= sizeof(PYEXEC_BALANCER_PREFIX) - 1
        || strncasecmp(arg, PYEXEC_BALANCER_PREFIX,
                       sizeof(PYEXEC_BALANCER_PREFIX) - 1)
        || memchr(arg + sizeof(PYEXEC_BALANCER_PREFIX) - 1, '/',
                  n - (sizeof(PYEXEC_BALANCER_PREFIX) - 1))) {
        return apr_psprintf(cmd->pool, "PyExecFront: '%s' is not a "
                            "balancer's name such as balancer://pyexec",
                            arg);
    }
    c->front = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *set_path(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    const char **field = (const char **)((char *)c + (size_t)cmd->info);
    (void)dc;

    if (err) {
        return err;
    }
    *field = ap_server_root_relative(cmd->pool, arg);
    if (!*field) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static int module_name_ok(const char *s)
{
    int dot_ok = 0;

    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s == '.') {
            if (!dot_ok) {
                return 0;
            }
            dot_ok = 0;
        }
        else if (apr_isalnum(*s) || *s == '_') {
            dot_ok = 1;
        }
        else {
            return 0;
        }
    }
    return dot_ok;
}

static const char *add_blocked(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    size_t i;
    (void)dc;

    if (err) {
        return err;
    }
    if (!c->blocked) {
        c->blocked = apr_array_make(cmd->pool, 64, sizeof(const char *));
    }
    if (!strcasecmp(arg, "none")) {
        return NULL;
    }
    if (!strcasecmp(arg, "default")) {
        for (i = 0; i < sizeof(default_blocked) / sizeof(default_blocked[0]);
             i++) {
            APR_ARRAY_PUSH(c->blocked, const char *) = default_blocked[i];
        }
        return NULL;
    }
    if (!module_name_ok(arg)) {
        return apr_psprintf(cmd->pool, "PyExecBlockModules: '%s' is not a "
                            "module name", arg);
    }
    APR_ARRAY_PUSH(c->blocked, const char *) = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static const char *add_allowed(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    (void)dc;

    if (err) {
        return err;
    }
    if (!module_name_ok(arg)) {
        return apr_psprintf(cmd->pool, "PyExecAllowModules: '%s' is not a "
                            "module name", arg);
    }
    if (!c->allowed) {
        c->allowed = apr_array_make(cmd->pool, 8, sizeof(const char *));
    }
    APR_ARRAY_PUSH(c->allowed, const char *) = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static const char *set_flag(cmd_parms *cmd, void *dc, int on)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);

    (void)dc;
    if (err) {
        return err;
    }
    *(int *)((char *)c + (size_t)cmd->info) = on;
    return NULL;
}

/* PyExecRateLimit off | <n>/s [burst] | <n>/m [burst] */
static const char *set_rate(cmd_parms *cmd, void *dc, const char *rate,
                            const char *burst)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);
    char *end;
    double v;

    (void)dc;
    if (err) {
        return err;
    }
    if (!strcasecmp(rate, "off")) {
        if (burst) {
            return "PyExecRateLimit off takes no burst";
        }
        c->rate_limit = 0;
        return NULL;
    }
    v = strtod(rate, &end);
    if (end == rate || !(v > 0) || v > 1e6) {
        return "PyExecRateLimit: expected 'off' or a rate such as 5/s or "
               "60/m";
    }
    if (!strcmp(end, "/m")) {
        v /= 60;
    }
    else if (*end && strcmp(end, "/s")) {
        return "PyExecRateLimit: the rate is per second (/s) or per minute "
               "(/m)";
    }
    c->rate_limit = v;
    c->rate_burst = v < 1 ? 1 : (int)(v + 0.999);
    if (burst) {
        long b = strtol(burst, &end, 10);
        if (*end || b < 1 || b > 1000000) {
            return "PyExecRateLimit: burst must be a number from 1 to "
                   "1000000";
        }
        c->rate_burst = (int)b;
    }
    return NULL;
}

static const char *add_skip(cmd_parms *cmd, void *dc, const char *arg)
{
    pyexec_conf_t *c;
    const char *err = global_conf(cmd, &c);

    (void)dc;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "seccomp")) {
        c->skip_layers |= PYEXEC_SPAWN_SKIP_SECCOMP;
    }
    else if (!strcasecmp(arg, "landlock")) {
        c->skip_layers |= PYEXEC_SPAWN_SKIP_LANDLOCK;
    }
    else {
        return "PyExecTestSkipLayers: seccomp or landlock";
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                 PYEXEC_LOGNO(00401) "PyExecTestSkipLayers %s: for tests "
                 "only, helpers run without that layer", arg);
    return NULL;
}

#define OFF(f) (void *)APR_OFFSETOF(pyexec_conf_t, f)

const command_rec pyexec_cmds[] = {
    AP_INIT_TAKE1("PyExecHelper", set_path, OFF(helper_path), RSRC_CONF,
                  "Path of the pyexec-helper program"),
    AP_INIT_TAKE1("PyExecSocketDir", set_path, OFF(socket_dir), RSRC_CONF,
                  "Directory for the supervisor's and helpers' sockets"),
    AP_INIT_TAKE1("PyExecTimeout", set_interval, OFF(timeout), RSRC_CONF,
                  "Wall-clock limit of one execution (default 2s)"),
    AP_INIT_TAKE1("PyExecSessionIdleTimeout", set_interval, OFF(idle_timeout),
                  RSRC_CONF, "Idle time after which a session ends "
                  "(default 600s)"),
    AP_INIT_TAKE1("PyExecMemoryLimit", set_size, OFF(memory_limit), RSRC_CONF,
                  "Memory a session may use above the interpreter's own "
                  "(default 100M)"),
    AP_INIT_TAKE1("PyExecMaxOutput", set_size, OFF(max_output), RSRC_CONF,
                  "Bytes of stdout and of stderr kept per execution "
                  "(default 1M)"),
    AP_INIT_TAKE1("PyExecMaxDisplay", set_size, OFF(max_display), RSRC_CONF,
                  "Bytes of rich output (display(), figures, tables) kept "
                  "per execution; 0 for none (default 4M)"),
    AP_INIT_TAKE1("PyExecMaxCodeSize", set_size, OFF(max_code), RSRC_CONF,
                  "Largest accepted source (default 64K)"),
    AP_INIT_TAKE1("PyExecMaxSessions", set_count, OFF(max_sessions), RSRC_CONF,
                  "Sessions alive at once (default 100)"),
    AP_INIT_TAKE1("PyExecMaxClientSessions", set_count_or_off,
                  OFF(max_client_sessions), RSRC_CONF,
                  "Sessions one client address may have alive at once, or "
                  "off (default 10)"),
    AP_INIT_TAKE1("PyExecMaxQueue", set_count, OFF(max_queue), RSRC_CONF,
                  "Requests that may wait for a session's running one; "
                  "past it they are refused at once (default 4)"),
    AP_INIT_FLAG("PyExecEvictIdle", set_flag, OFF(evict_idle), RSRC_CONF,
                 "With every session live, end the one idle longest for a "
                 "new one instead of refusing it (default Off)"),
    AP_INIT_TAKE1("PyExecSpareHelpers", set_count, OFF(spare_helpers),
                  RSRC_CONF, "Warm interpreters kept ready (default 4)"),
    AP_INIT_TAKE12("PyExecRateLimit", set_rate, NULL, RSRC_CONF,
                   "Requests per client address: off, or a rate such as "
                   "5/s with an optional burst (default off)"),
    AP_INIT_TAKE1("PyExecRoute", set_route, NULL, RSRC_CONF,
                  "This host's route among many behind mod_proxy_balancer "
                  "(its BalancerMember's route=): new session ids end in "
                  "'.<route>' (default: none, plain UUIDs)"),
    AP_INIT_TAKE1("PyExecFront", set_front, NULL, RSRC_CONF,
                  "This httpd is a front: no code runs here; requests "
                  "mod_proxy sends to this balancer (balancer://<name>) "
                  "are routed by the route in their session id"),
    AP_INIT_TAKE1("PyExecUser", set_name, OFF(helper_user), RSRC_CONF,
                  "User the Python helpers run as when httpd starts as root "
                  "(default: httpd's User)"),
    AP_INIT_TAKE1("PyExecGroup", set_name, OFF(helper_group), RSRC_CONF,
                  "Group of the Python helpers (default: httpd's Group, or "
                  "PyExecUser's primary group)"),
    AP_INIT_FLAG("PyExecRequireSandbox", set_flag, OFF(require_sandbox),
                 RSRC_CONF, "Refuse to run code unless every sandbox layer "
                 "holds (default On when httpd starts as root)"),
    AP_INIT_FLAG("PyExecTestNoImportHook", set_flag, OFF(no_import_hook),
                 RSRC_CONF, "TESTS ONLY: leave __import__ and open "
                 "unrestricted, to show the OS layers hold alone"),
    AP_INIT_ITERATE("PyExecTestSkipLayers", add_skip, NULL, RSRC_CONF,
                    "TESTS ONLY: leave out sandbox layers (seccomp, "
                    "landlock) as a host without them would"),
    AP_INIT_ITERATE("PyExecBlockModules", add_blocked, NULL, RSRC_CONF,
                    "Modules user code may not import; 'default' stands for "
                    "the built-in list, 'none' for an empty one"),
    AP_INIT_ITERATE("PyExecAllowModules", add_allowed, NULL, RSRC_CONF,
                    "Installed packages (beyond the standard library) user "
                    "code may import, such as numpy; preloaded in every "
                    "helper. PyExecBlockModules still wins"),
    {NULL}
};

void pyexec_conf_effective(apr_pool_t *p, server_rec *s, pyexec_conf_t *out)
{
    const pyexec_conf_t *c = ap_get_module_config(s->module_config,
                                                  &pyexec_module);
    size_t i;

    *out = *c;
    if (!out->helper_path) {
        out->helper_path = PYEXEC_HELPER_DEFAULT;
    }
    if (!out->socket_dir) {
        out->socket_dir = ap_runtime_dir_relative(p, "pyexec");
    }
    if (out->timeout < 0) {
        out->timeout = apr_time_from_msec(PYEXEC_DEFAULT_TIMEOUT_MS);
    }
    if (out->idle_timeout < 0) {
        out->idle_timeout = apr_time_from_sec(PYEXEC_DEFAULT_IDLE_TIMEOUT_S);
    }
    if (out->memory_limit < 0) {
        out->memory_limit = PYEXEC_DEFAULT_MEMORY_LIMIT;
    }
    if (out->max_output < 0) {
        out->max_output = PYEXEC_DEFAULT_MAX_OUTPUT;
    }
    if (out->max_display < 0) {
        out->max_display = PYEXEC_DEFAULT_MAX_DISPLAY;
    }
    if (out->max_code < 0) {
        out->max_code = PYEXEC_DEFAULT_MAX_CODE;
    }
    if (out->max_sessions < 0) {
        out->max_sessions = PYEXEC_DEFAULT_MAX_SESSIONS;
    }
    if (out->max_client_sessions < 0) {
        out->max_client_sessions = PYEXEC_DEFAULT_MAX_CLIENT_SESSIONS;
    }
    if (out->max_queue < 0) {
        out->max_queue = PYEXEC_DEFAULT_MAX_QUEUE;
    }
    if (out->evict_idle < 0) {
        out->evict_idle = 0;
    }
    if (out->spare_helpers < 0) {
        out->spare_helpers = PYEXEC_DEFAULT_SPARE_HELPERS;
    }
    if (out->require_sandbox < 0) {
        out->require_sandbox = geteuid() == 0;
    }
    if (out->no_import_hook < 0) {
        out->no_import_hook = 0;
    }
    if (out->rate_limit < 0) {
        out->rate_limit = 0;
    }
    if (!out->allowed) {
        out->allowed = apr_array_make(p, 1, sizeof(const char *));
    }
    if (!out->blocked) {
        out->blocked = apr_array_make(p, 64, sizeof(const char *));
        for (i = 0; i < sizeof(default_blocked) / sizeof(default_blocked[0]);
             i++) {
            APR_ARRAY_PUSH(out->blocked, const char *) = default_blocked[i];
        }
    }
}
