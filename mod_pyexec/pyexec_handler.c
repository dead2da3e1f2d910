/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The HTTP face of mod_pyexec. Runs in httpd's worker processes, as
 * User.
 *
 *   SetHandler pyexec            POST /execute runs code: the method, the
 *                                rate limit, the body and its JSON, then
 *                                pyexec_bridge_run() (pyexec_bridge.c),
 *                                and the outcome as the contract's JSON;
 *                                GET and DELETE ?id= (or the
 *                                PyExec-Session header) look at or end a
 *                                session
 *   SetHandler pyexec-sessions   an operator's listing of every session
 *   post_read_request,
 *   translate_name               session ids out of the request line and
 *                                the query before anything logs them
 *   translate_name,
 *   map_to_storage               no file-system walk for the endpoint
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <ap_expr.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <scoreboard.h>

#include "pyexec_private.h"
#include "pyexec_bridge.h"
#include "pyexec_handler.h"
#include "pyexec_id.h"
#include "pyexec_io.h"
#include "pyexec_request.h"
#include "pyexec_state.h"
#include "pyexec_supervisor.h"

#define MSG_TIMEOUT  "Execution timeout. Session terminated."
#define MSG_MEMORY   "Memory limit exceeded. Session terminated."
#define MSG_CRASH    "Interpreter crashed. Session terminated."
#define MSG_DELETED  "Session deleted during the execution."
#define MSG_UNKNOWN  "Unknown session id: the session does not exist, has " \
                     "expired or was terminated. Send no id to start a new one."

/* --- answers --------------------------------------------------------- */

static void json_headers(request_rec *r, int status, apr_off_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    ap_set_content_length(r, len);
}

int pyexec_send_json(request_rec *r, int status, const char *body)
{
    json_headers(r, status, (apr_off_t)strlen(body));
    if (!r->header_only) {
        ap_rwrite(body, (int)strlen(body), r);
    }
    return OK;
}

/* body: malloc()ed JSON, freed here; NULL when building it failed */
static int send_body(request_rec *r, int status, char *body)
{
    if (!body) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    pyexec_send_json(r, status, body);
    free(body);
    return OK;
}

static int write_piece(void *ctx, const char *piece, size_t len)
{
    return ap_rwrite(piece, (int)len, ctx) < 0 ? -1 : 0;
}

/* The contract's answer, written in pieces as it is encoded: an answer
 * of many megabytes is never held whole (pyexec_answer_write), and what
 * the output filters hold of it at once stays small. */
static int send_answer(request_rec *r, int status, const pyexec_answer_t *a)
{
    size_t len = pyexec_answer_len(a);

    if (!len) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    json_headers(r, status, (apr_off_t)len);
    if (!r->header_only) {
        /* a client gone mid-answer: nothing more to do for it */
        pyexec_answer_write(a, write_piece, r);
    }
    return OK;
}

static int send_json(request_rec *r, int status, const char *id,
                     const char *out, size_t out_len,
                     const char *err, size_t err_len, const char *error)
{
    pyexec_answer_t a = { id, out, out_len, err, err_len, error, NULL, 0 };

    return send_answer(r, status, &a);
}

static int send_error(request_rec *r, int status, const char *error)
{
    apr_table_setn(r->notes, "pyexec-outcome", "rejected");
    return send_json(r, status, NULL, NULL, 0, NULL, 0, error);
}

static void set_server_timing(request_rec *r, int64_t usec)
{
    apr_table_setn(r->headers_out, "Server-Timing",
                   apr_psprintf(r->pool, "exec;dur=%.3f", usec / 1000.0));
    apr_table_setn(r->notes, "pyexec-exec-ms",
                   apr_psprintf(r->pool, "%.3f", usec / 1000.0));
}

/* --- the request ----------------------------------------------------- */

/* Read the whole body, refusing anything above limit. Returns OK or
 * an HTTP status, with the reason in *why. Reads through the input
 * filters, so chunked bodies, Expect: 100-continue and httpd's own read
 * timeout (Timeout, mod_reqtimeout) apply. */
static int read_body(request_rec *r, apr_size_t limit, char **buf,
                     apr_size_t *len, const char **why)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_bucket_brigade *bb;
    apr_size_t cap = 16384, got = 0;
    apr_off_t declared = 0;
    int seen_eos = 0;
    char *b;

    *why = NULL;
    if (cl && (!ap_parse_strict_length(&declared, cl) || declared < 0)) {
        *why = "Invalid Content-Length.";
        return HTTP_BAD_REQUEST;
    }
    if (declared > (apr_off_t)limit) {
        *why = apr_psprintf(r->pool, "Request body is %" APR_OFF_T_FMT
                            " bytes; the limit is %" APR_SIZE_T_FMT ".",
                            declared, limit);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (declared > 0) {
        cap = (apr_size_t)declared + 1;
    }
    b = apr_palloc(r->pool, cap);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!seen_eos) {
        apr_bucket *e;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         HUGE_STRING_LEN);

        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);

            *why = status == HTTP_REQUEST_TIME_OUT
                   ? "The request body arrived too slowly."
                   : "Could not read the request body.";
            return status;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                continue;
            }
            rv = apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                *why = "Could not read the request body.";
                return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            }
            if (got + n > limit) {
                *why = apr_psprintf(r->pool, "Request body is larger than "
                                    "the limit of %" APR_SIZE_T_FMT " bytes.",
                                    limit);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            if (got + n > cap) {
                char *nb;

                while (cap < got + n) {
                    cap *= 2;
                }
                nb = apr_palloc(r->pool, cap);
                memcpy(nb, b, got);
                b = nb;
            }
            memcpy(b + got, data, n);
            got += n;
        }
        apr_brigade_cleanup(bb);
    }
    *buf = b;
    *len = got;
    return OK;
}

/* One token from the client's bucket; 0 when it is empty, with the
 * wait for the next one in *retry. */
static int rate_allowed(request_rec *r, int64_t *retry)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    int ok;

    if (pyexec_lock() != APR_SUCCESS) {
        return 1;               /* fail open: the limit is not a lock */
    }
    ok = pyexec_ratelimit_take(pyexec_state.shared.rl, r->useragent_ip,
                               pyexec_now_usec(), c->rate_limit,
                               (uint32_t)c->rate_burst, retry);
    if (!ok) {
        pyexec_reg_count_rate_limited(pyexec_state.shared.reg);
    }
    pyexec_unlock();
    return ok;
}

/* --- session ids out of what httpd keeps of a request ---------------- */

/* A session id is a bearer capability, and a GET or DELETE of a session
 * may name it in its query. httpd keeps the query where others read it:
 * the request line in the scoreboard (mod_status's ExtendedStatus) and
 * in the access log (%r), the query itself (%q, mod_rewrite's
 * variables, an ErrorDocument's REDIRECT_QUERY_STRING). So the first
 * id= is taken into this request's module configuration, which no log
 * format reaches, and every copy keeps of each id-shaped run its prefix
 * only (pyexec_id_redact).
 *
 * Whether a URI is ours (SetHandler pyexec) is known at translate_name,
 * but the MPM hands the request line to the scoreboard before that,
 * right after post_read_request. So post_read_request hides the ids of
 * any request line, keeping it as read; translate_name gives it back to
 * a request that is not ours and cleans the rest of one that is. A URI
 * made ours only later (by mod_rewrite, whose translate_name runs after
 * ours) is cleaned by the handler. */

typedef struct {
    char *the_request;          /* as read, while not known to be ours */
    /* on a front, every copy of the query as read, hidden from the start
     * (nothing knows a request is for the balancer before fixups) */
    int query_hidden;
    char *args, *unparsed_uri, *query;
    int cleaned;                /* every copy of its query is redacted */
    int id_given;               /* the query had an id= */
    int id_valid;               /* ... and it was a well-formed id */
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];   /* its route, or "" */
} request_ids_t;

static request_ids_t *request_ids(request_rec *r, int create)
{
    request_ids_t *ids = ap_get_module_config(r->request_config,
                                              &pyexec_module);

    if (!ids && create) {
        ids = apr_pcalloc(r->pool, sizeof(*ids));
        ap_set_module_config(r->request_config, &pyexec_module, ids);
    }
    return ids;
}

/* s with the ids of its query redacted (all of s if is_query), or NULL
 * when it has none. */
static char *redacted(apr_pool_t *p, const char *s, int is_query)
{
    const char *q = s && !is_query ? strchr(s, '?') : s;
    size_t head;
    char *out;

    if (!q) {
        return NULL;
    }
    head = (size_t)(q - s);
    out = apr_palloc(p, strlen(s) + 1);
    memcpy(out, s, head);
    return pyexec_id_redact(q, out + head) ? out : NULL;
}

static void redact_copies(request_rec *q)
{
    char *s;

    if ((s = redacted(q->pool, q->the_request, 0))) {
        q->the_request = s;
    }
    if ((s = redacted(q->pool, q->unparsed_uri, 0))) {
        q->unparsed_uri = s;
    }
    if ((s = redacted(q->pool, q->args, 1))) {
        q->args = s;
    }
    if ((s = redacted(q->pool, q->parsed_uri.query, 1))) {
        q->parsed_uri.query = s;
    }
}

/* Once per request of ours: keep its first id=, then clean it and the
 * requests it came from (an internal redirect's r->prev, a subrequest's
 * r->main), whose request lines are the ones logged. */
void pyexec_ids_take(request_rec *r)
{
    request_ids_t *ids = request_ids(r, 1);
    const char *p;
    request_rec *q = r;

    if (ids->cleaned) {
        return;
    }
    ids->cleaned = 1;
    for (p = r->args; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1
                                                   : NULL) {
        if (!strncmp(p, "id=", 3)) {
            ids->id_given = 1;
            ids->id_valid = pyexec_id_parse_routed(p + 3,
                                                   strcspn(p + 3, "&"),
                                                   &ids->id,
                                                   ids->route) == 0;
            break;
        }
    }
    for (;;) {
        redact_copies(q);
        if (!q->prev && !q->main) {
            break;
        }
        q = q->prev ? q->prev : q->main;
    }
    /* q is the request read from the connection: the scoreboard's copy
     * of its line may predate the cleaning (a URI made ours late) */
    ap_update_child_status(r->connection->sbh, SERVER_BUSY_WRITE, q);
}

int pyexec_post_read_request(request_rec *r)
{
    char *s = redacted(r->pool, r->the_request, 0);
    request_ids_t *ids;

    if (!s) {
        return DECLINED;
    }
    ids = request_ids(r, 1);
    ids->the_request = r->the_request;
    r->the_request = s;
    if (pyexec_state.conf.front) {
        ids->query_hidden = 1;
        ids->args = r->args;
        ids->unparsed_uri = r->unparsed_uri;
        ids->query = r->parsed_uri.query;
        redact_copies(r);
    }
    return DECLINED;
}

const char *pyexec_ids_query(request_rec *r)
{
    const request_ids_t *ids = request_ids(r, 0);

    return ids && ids->query_hidden ? ids->args : r->args;
}

/* What a log line or a note may carry of a session id. */
static const char *id_prefix(request_rec *r, const char *idtext)
{
    return apr_pstrmemdup(r->pool, idtext, PYEXEC_ID_PREFIX_LEN);
}

/* The session a GET or DELETE names: by the PyExec-Session header,
 * which keeps it out of URLs, or by the query's id=; and its route
 * (PYEXEC_ROUTE_MAX + 1 bytes). NULL, or what is wrong with the
 * request. */
static const char *named_session(request_rec *r, pyexec_id_t *id,
                                 char *route)
{
    const request_ids_t *ids = request_ids(r, 1);
    const char *h = apr_table_get(r->headers_in, PYEXEC_SESSION_HEADER);
    pyexec_id_t from_header;
    char header_route[PYEXEC_ROUTE_MAX + 1];

    if (h) {
        size_t n = strlen(h);

        while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) {
            n--;
        }
        if (pyexec_id_parse_routed(h, n, &from_header, header_route) != 0) {
            return "The " PYEXEC_SESSION_HEADER " header must be a "
                   "session id, as returned by POST.";
        }
        if (ids->id_given && ids->id_valid
            && (!pyexec_id_equal(&ids->id, &from_header)
                || strcmp(ids->route, header_route))) {
            return "The query and the " PYEXEC_SESSION_HEADER " header "
                   "name different sessions.";
        }
    }
    if (ids->id_given ? !ids->id_valid : !h) {
        return "The query must be ?id=<session id>, the id POST returned "
               "(or send the id in a " PYEXEC_SESSION_HEADER " header).";
    }
    *id = h ? from_header : ids->id;
    strcpy(route, h ? header_route : ids->route);
    return NULL;
}

/* --- many hosts: PyExecRoute ------------------------------------------ */

/* An id without a route is anybody's (sessions from before the host had
 * one); an id with a route is this host's only if it is this host's. */
static int route_is_ours(const char *route)
{
    const char *mine = pyexec_state.conf.route;

    return !route[0] || (mine && !strcmp(route, mine));
}

/* A session of another host's: the balancer sent it here by mistake, or
 * a client came straight here. It never runs here (no session of that
 * id can exist here), and the answer says where it belongs. */
static int send_misdirected(request_rec *r, const char *route)
{
    const char *mine = pyexec_state.conf.route;

    return send_error(r, HTTP_MISDIRECTED_REQUEST, apr_psprintf(r->pool,
                      "Misdirected request: this session lives on the host "
                      "with route \"%s\", and this is %s%s%s. Nothing was "
                      "run. Send the request through the balancer, with the "
                      "PYEXEC_ROUTE cookie or ?route=.%s.", route,
                      mine ? "route \"" : "a host without a route",
                      mine ? mine : "", mine ? "\"" : "", route));
}

/* The route of a new session travels without its id (a bearer secret):
 * a cookie the balancer's stickysession reads, for the client's later
 * requests. Nothing else of the session goes in it. */
static void set_route_cookie(request_rec *r)
{
    const char *mine = pyexec_state.conf.route;

    if (mine) {
        apr_table_addn(r->headers_out, "Set-Cookie", apr_pstrcat(r->pool,
                       PYEXEC_ROUTE_COOKIE "=.", mine,
                       "; Path=/; HttpOnly; SameSite=Strict", NULL));
    }
}

/* --- the session resource: GET and DELETE ?id=<id> -------------------- */

/* Under the registry lock. */
static void slot_info(const pyexec_slot_t *s, const char *id,
                      int64_t now_mono, int64_t now_wall,
                      pyexec_session_info_t *info)
{
    info->id = id;
    info->created_usec = s->created;
    info->last_used_usec = now_wall - (now_mono - s->last_use);
    info->executions = s->executions;
    info->memory_bytes = s->mem_bytes;
    info->running = s->inflight > 0;
    info->timeout_usec = s->limits.timeout;
    info->max_output = s->limits.max_output;
    info->max_display = s->limits.max_display;
    info->max_code = s->limits.max_code;
}

/* The id is the capability: whoever has it may look at or end its
 * session, and nothing lists the others. */
static int session_resource(request_rec *r)
{
    pyexec_session_info_t info;
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];
    const char *why = named_session(r, &id, route);
    char idtext[PYEXEC_ID_TEXT_MAX + 1];
    int32_t idx, pid = 0;
    uint32_t gen = 0;

    if (why) {
        return send_error(r, HTTP_BAD_REQUEST, why);
    }
    if (!route_is_ours(route)) {
        return send_misdirected(r, route);
    }
    pyexec_id_format_routed(&id, pyexec_state.conf.route, idtext);
    apr_table_setn(r->notes, "pyexec-session", id_prefix(r, idtext));
    if (pyexec_lock() != APR_SUCCESS) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "Internal error; see the server's error log.");
    }
    idx = pyexec_reg_lookup(pyexec_state.shared.reg, &id);
    if (idx != PYEXEC_REG_NONE) {
        const pyexec_slot_t *s = pyexec_reg_slot(pyexec_state.shared.reg, idx);

        gen = s->gen;
        slot_info(s, idtext, pyexec_now_usec(), pyexec_wallclock_usec(),
                  &info);
        if (r->method_number == M_DELETE) {
            /* gone from lookups now; a run in progress ends with it */
            pid = pyexec_reg_end(pyexec_state.shared.reg, idx, gen,
                                 PYEXEC_END_DELETED);
        }
    }
    pyexec_unlock();
    if (idx == PYEXEC_REG_NONE) {
        return send_error(r, HTTP_NOT_FOUND, MSG_UNKNOWN);
    }
    if (r->method_number == M_DELETE) {
        if (pid > 0) {
            pyexec_supervisor_kill(idx, gen, PYEXEC_END_DELETED);
        }
        apr_table_setn(r->notes, "pyexec-outcome", "deleted");
        r->status = HTTP_NO_CONTENT;
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        return OK;
    }
    apr_table_setn(r->notes, "pyexec-outcome", "info");
    return send_body(r, HTTP_OK, pyexec_session_json(&info));
}

/* --- an operator's listing: SetHandler pyexec-sessions ----------------- */

/* Every live session, ids included. Nothing serves this unless an
 * operator puts the handler in a <Location> of its own, which is where
 * its access control goes: ids are capabilities. */
int pyexec_sessions_handler(request_rec *r)
{
    pyexec_session_info_t *infos;
    char (*ids)[PYEXEC_ID_TEXT_MAX + 1];
    pyexec_registry_t *reg = pyexec_state.shared.reg;
    size_t n = 0;
    int64_t now_mono, now_wall;

    if (!r->handler || strcmp(r->handler, PYEXEC_SESSIONS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return send_error(r, HTTP_METHOD_NOT_ALLOWED,
                          "Method not allowed: GET lists the sessions.");
    }
    if (!reg) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "The Python execution service is not running.");
    }
    infos = apr_pcalloc(r->pool, reg->nslots * sizeof(*infos));
    ids = apr_pcalloc(r->pool, reg->nslots * sizeof(*ids));
    if (pyexec_lock() != APR_SUCCESS) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "Internal error; see the server's error log.");
    }
    now_mono = pyexec_now_usec();
    now_wall = pyexec_wallclock_usec();
    for (uint32_t i = 0; i < reg->nslots; i++) {
        const pyexec_slot_t *s = pyexec_reg_slot(reg, (int32_t)i);

        if (s->state == PYEXEC_SLOT_LIVE) {
            pyexec_id_format_routed(&s->id, pyexec_state.conf.route,
                                    ids[n]);
            slot_info(s, ids[n], now_mono, now_wall, &infos[n]);
            n++;
        }
    }
    pyexec_unlock();
    return send_body(r, HTTP_OK, pyexec_session_list_json(infos, n));
}

/* The endpoint names no file, so the directory and file walk (a stat
 * and an .htaccess probe per path component) would be wasted on every
 * request. map_to_storage could skip it, but by then httpd has set the
 * request's configuration back to the server's; translate_name, run
 * first, still sees the <Location> configuration found for the URI. So
 * translate_name notes a URI that SetHandler pyexec covers and declines
 * (mod_rewrite, mod_alias or the core map it as usual), and
 * map_to_storage skips the walk only if the URI is still that one: a
 * request rewritten to another URI gets the walk, and with it its
 * <Directory> rules. What governs access to the endpoint is <Location>,
 * which httpd walks again after this, for the same URI, so the handler
 * is still ours. */
#define PYEXEC_NOTE_NO_WALK "pyexec-no-walk"

void pyexec_ids_release(request_rec *r)
{
    request_ids_t *ids = request_ids(r, 0);

    if (!ids || ids->cleaned) {
        return;
    }
    if (ids->the_request) {
        r->the_request = ids->the_request;
    }
    if (ids->query_hidden) {
        r->args = ids->args;
        r->unparsed_uri = ids->unparsed_uri;
        r->parsed_uri.query = ids->query;
        ids->query_hidden = 0;
    }
}

int pyexec_translate_name(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *handler = NULL, *err = NULL;

    if (pyexec_state.conf.front) {
        /* on a front mod_proxy forwards the query as it is after
         * translate_name: the front's fixups take the ids out of it
         * (pyexec_front.c) */
        return DECLINED;
    }
    if (d && d->expr_handler && r->uri) {
        handler = ap_expr_str_exec(r, d->expr_handler, &err);
    }
    if (!err && handler && !strcmp(handler, PYEXEC_HANDLER)) {
        pyexec_ids_take(r);
        apr_table_setn(r->notes, PYEXEC_NOTE_NO_WALK, r->uri);
    }
    else {
        /* another's request: its line is none of our business */
        pyexec_ids_release(r);
    }
    return DECLINED;
}

int pyexec_map_to_storage(request_rec *r)
{
    const char *uri = apr_table_get(r->notes, PYEXEC_NOTE_NO_WALK);

    if (uri && r->uri && !strcmp(uri, r->uri)) {
        return OK;
    }
    return DECLINED;

}

/* Retry-After in whole seconds, at least 1: a client told 0 would come
 * straight back. */
static void set_retry_after(request_rec *r, int64_t usec)
{
    int64_t s = (usec + 999999) / 1000000;

    apr_table_setn(r->headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, s < 1 ? 1 : s));
}

/* The contract's answer to a run: its status and body (a's strings live
 * in the request's pool or the run). */
static int answer_of(request_rec *r, const pyexec_run_t *run,
                     pyexec_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    a->id = run->id;
    switch (run->outcome) {
    case PYEXEC_RUN_OK:
        a->out = run->out;
        a->out_len = run->out_len;
        a->err = run->err;
        a->err_len = run->err_len;
        a->display = run->display;
        a->display_len = run->display_len;
        return HTTP_OK;
    case PYEXEC_RUN_TIMEOUT:
        a->error = MSG_TIMEOUT;
        return HTTP_OK;
    case PYEXEC_RUN_MEMORY:
        a->error = MSG_MEMORY;
        return HTTP_OK;
    case PYEXEC_RUN_BUSY:
        set_retry_after(r, run->retry_usec ? run->retry_usec : 2000000);
        a->error = "The session is busy with earlier requests; nothing was "
                   "run. Try again later.";
        return HTTP_SERVICE_UNAVAILABLE;
    case PYEXEC_RUN_TOO_LARGE:
        a->error = apr_psprintf(r->pool, "Code too large for this session: "
                                "it was started with a limit of %u bytes. "
                                "Nothing was run.", run->max_code);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    case PYEXEC_RUN_LOCAL:
        a->error = "Internal error; nothing was run. See the server's error "
                   "log.";
        return HTTP_INTERNAL_SERVER_ERROR;
    case PYEXEC_RUN_DIED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      PYEXEC_LOGNO(00304) "session %s" PYEXEC_ID_REDACTED
                      " ended during an execution: %s",
                      id_prefix(r, run->id),
                      pyexec_end_reason_name(run->died_why));
        a->error = run->died_why == PYEXEC_END_MEMORY ? MSG_MEMORY
                   : run->died_why == PYEXEC_END_TIMEOUT ? MSG_TIMEOUT
                   : run->died_why == PYEXEC_END_DELETED ? MSG_DELETED
                   : MSG_CRASH;
        return HTTP_OK;
    }
    a->error = "Internal error.";
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* --- a streamed run (Accept: text/event-stream) ------------------------ */

/* Whether the client asked for events: text/event-stream among its
 * Accept header's media ranges, case aside, and not with q=0. */
static int wants_events(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");
    char *list, *range, *state;

    if (!accept) {
        return 0;
    }
    list = apr_pstrdup(r->pool, accept);
    for (range = apr_strtok(list, ",", &state); range;
         range = apr_strtok(NULL, ",", &state)) {
        char *param, *pstate, *type = apr_strtok(range, ";", &pstate);
        int refused = 0;

        if (!type) {
            continue;
        }
        apr_collapse_spaces(type, type);      /* in place */
        if (strcasecmp(type, "text/event-stream") != 0) {
            continue;
        }
        while ((param = apr_strtok(NULL, ";", &pstate)) != NULL) {
            apr_collapse_spaces(param, param);
            if ((param[0] == 'q' || param[0] == 'Q') && param[1] == '='
                && strtod(param + 2, NULL) <= 0) {
                refused = 1;
            }
        }
        if (!refused) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    request_rec *r;
    int new_session;
    int started;
    apr_socket_t *sock;         /* the client's, to see that it keeps up */
} events_t;

static int write_flushed(events_t *ev)
{
    return ap_rflush(ev->r) < 0 || ev->r->connection->aborted ? -1 : 0;
}

/* A client that reads slower than the code writes would make the
 * worker wait on it while the run's clock goes on, and the helper wait on
 * the worker: past the point where its socket takes no more at once, it
 * gets no more events, only the last, which holds the whole answer. */
static int client_keeps_up(events_t *ev)
{
    apr_os_sock_t fd;
    struct pollfd pfd;

    if (!ev->sock || apr_os_sock_get(&fd, ev->sock) != APR_SUCCESS) {
        return 1;               /* not a plain socket (HTTP/2): its own */
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

static int events_flush(void *ctx)
{
    /* a flush waits until the client took it all: not on a slow one */
    return client_keeps_up(ctx) ? write_flushed(ctx) : -1;
}

/* The session is ours: 200 and the headers go out at once, before the
 * code runs. From here on the status is said by the last event. */
static void events_start(void *ctx, const pyexec_run_t *run)
{
    events_t *ev = ctx;
    request_rec *r = ev->r;

    (void)run;
    if (ev->new_session) {
        set_route_cookie(r);
    }
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    /* nobody on the way may hold the events back to compress or buffer */
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    ev->started = 1;
    ap_rputs(": running\n\n", r);
    write_flushed(ev);
}

static int events_output(void *ctx, unsigned kind, const unsigned char *data,
                         size_t len, uint32_t stdout_offset)
{
    events_t *ev = ctx;
    int rc;

    if (!client_keeps_up(ev)) {
        return -1;
    }
    if (kind == PYEXEC_OUTPUT_DISPLAY) {
        rc = pyexec_event_display(data, len, stdout_offset, write_piece,
                                  ev->r);
    }
    else {
        rc = pyexec_event_text(kind == PYEXEC_OUTPUT_STDOUT ? "stdout"
                               : "stderr", (const char *)data, len,
                               write_piece, ev->r);
    }
    /* flushed when nothing more waits (events_flush), so that a burst
     * of small writes is one write to the client */
    return rc != 0 || ev->r->connection->aborted ? -1 : 0;
}

/* The contract's answer to a run, whole or as the last event. */
static int answer(request_rec *r, const pyexec_run_t *run, events_t *ev)
{
    pyexec_answer_t a;
    int status = answer_of(r, run, &a);

    if (!ev || !ev->started) {
        return send_answer(r, status, &a);
    }
    /* a client gone mid-stream: nothing more to do for it */
    if (pyexec_event_answer(&a, write_piece, r) == 0) {
        write_flushed(ev);
    }
    return OK;
}

int pyexec_handler(request_rec *r)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_request_t req;
    pyexec_run_t run;
    const char *why;
    char *body = NULL;
    apr_size_t body_len = 0;
    int64_t retry = 0;
    int rc, resource, new_session, streamed;
    pyexec_stream_sink_t sink;
    events_t ev;

    if (!r->handler || strcmp(r->handler, PYEXEC_HANDLER)) {
        return DECLINED;
    }
    pyexec_ids_take(r);
    if (!pyexec_state.shared.reg || pyexec_state.ctl_fd < 0) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "The Python execution service is not running.");
    }
    resource = (r->method_number == M_GET || r->method_number == M_DELETE)
               && (r->args || apr_table_get(r->headers_in,
                                            PYEXEC_SESSION_HEADER));
    if (!resource && r->method_number != M_POST) {
        apr_table_setn(r->headers_out, "Allow", "POST, GET, DELETE");
        return send_error(r, HTTP_METHOD_NOT_ALLOWED,
                          "Method not allowed: POST a JSON object such as "
                          "{\"code\": \"print(1)\"} to run code; GET or "
                          "DELETE ?id=<session id> (or with the id in a "
                          PYEXEC_SESSION_HEADER " header) to see or end a "
                          "session.");
    }
    /* looking at and ending sessions count too: each is a lookup under
     * the registry's lock, and a way to probe for ids */
    if (c->rate_limit > 0 && !rate_allowed(r, &retry)) {
        apr_table_setn(r->headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    (retry + 999999) / 1000000));
        return send_error(r, HTTP_TOO_MANY_REQUESTS, apr_psprintf(r->pool,
                          "Too many requests from your address: the limit "
                          "is %g per second. Try again in %.1f s.",
                          c->rate_limit, retry / 1e6));
    }
    if (resource) {
        return session_resource(r);
    }
    if (!pyexec_json_media_type(apr_table_get(r->headers_in,
                                              "Content-Type"))) {
        return send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "Content-Type must be application/json.");
    }
    rc = read_body(r, pyexec_request_body_max((size_t)c->max_code), &body,
                   &body_len, &why);
    if (rc != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            r->connection->keepalive = AP_CONN_CLOSE;
        }
        return why ? send_error(r, rc, why) : rc;
    }
    if (pyexec_request_parse(body, body_len, (size_t)c->max_code, &req) != 0) {
        return send_error(r, req.status, req.error);
    }
    if (req.has_id && !route_is_ours(req.route)) {
        pyexec_request_clear(&req);
        return send_misdirected(r, req.route);
    }

    new_session = !req.has_id;
    ev.r = r;
    ev.new_session = new_session;
    ev.started = 0;
    ev.sock = ap_get_conn_socket(r->connection);
    sink.start = events_start;
    sink.output = events_output;
    sink.flush = events_flush;
    sink.ctx = &ev;
    streamed = wants_events(r);
    rc = pyexec_bridge_run(r, &req, streamed ? &sink : NULL, &run);
    pyexec_request_clear(&req);
    if (rc != OK) {
        switch (rc) {
        case HTTP_NOT_FOUND:
            return send_error(r, rc, MSG_UNKNOWN);
        case HTTP_SERVICE_UNAVAILABLE:
            set_retry_after(r, run.retry_usec);
            return send_error(r, rc, apr_psprintf(r->pool,
                              "Too many sessions: at most %d may be live at "
                              "once. Try again later.", c->max_sessions));
        case HTTP_TOO_MANY_REQUESTS:
            set_retry_after(r, run.retry_usec);
            return send_error(r, rc, apr_psprintf(r->pool,
                              "Too many sessions from your address: at most "
                              "%d may be live at once. End one (DELETE) or "
                              "try again later.", c->max_client_sessions));
        case HTTP_GATEWAY_TIME_OUT:
            apr_table_setn(r->headers_out, "Retry-After", "5");
            return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "No Python interpreter became available in "
                              "time. Try again later.");
        default:
            return send_error(r, HTTP_INTERNAL_SERVER_ERROR,
                              "Internal error; see the server's error log.");
        }
    }
    if (new_session && !ev.started) {
        set_route_cookie(r);
    }
    apr_table_setn(r->notes, "pyexec-session", id_prefix(r, run.id));
    apr_table_setn(r->notes, "pyexec-outcome", pyexec_outcome_name(&run));
    if (!ev.started) {
        set_server_timing(r, run.exec_usec);
    }
    return answer(r, &run, streamed ? &ev : NULL);
}

