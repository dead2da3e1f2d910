/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The front role (PyExecFront balancer://<name>). Runs in the workers of
 * a front httpd, which runs no code and has no supervisor: its
 * mod_proxy_balancer spreads sessions over the backends, and this file
 * tells it which backend holds the session a request names.
 *
 * The balancer's stickiness reads a route from the PYEXEC_ROUTE cookie
 * or a route= URL parameter; a client that sends the session id only in
 * the JSON body (the API's contract, no cookie jar) carries neither. So
 * for each request mod_proxy is about to send to our balancer, the
 * fixups hook finds the id (the JSON body's "id" for POST, else the
 * PyExec-Session header or ?id=) and puts its route first in the URL the
 * balancer reads, where it wins over any cookie. The body is read here
 * and given back to mod_proxy by an input filter (kept_body_filter).
 *
 * The id itself never goes in a URL: an ?id= is moved into the
 * PyExec-Session header for the backend, and every copy httpd logs is
 * cleaned of it (pyexec_ids_take). Routing, health, drain and failover
 * stay the balancer's.
 *
 *   SetHandler pyexec-error   the front's own errors (a host down or
 *                             drained away, none left) as the API's JSON,
 *                             for ErrorDocument
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "pyexec_private.h"
#include "pyexec_front.h"
#include "pyexec_handler.h"
#include "pyexec_id.h"
#include "pyexec_request.h"
#include "pyexec_state.h"

#define KEPT_BODY_FILTER "PYEXEC_KEPT_BODY"
/* The route this front gave the balancer, for the error document */
#define NOTE_ROUTE "pyexec-route"

/* --- the body, read here and read again by mod_proxy ------------------- */

typedef struct {
    apr_bucket_brigade *kept;   /* what was read and not yet given back */
} kept_body_t;

/* Gives back what the fixups read, then steps aside: the rest (of a body
 * longer than the front reads, or the EOS again) comes from below. */
static apr_status_t kept_body_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                     ap_input_mode_t mode,
                                     apr_read_type_e block,
                                     apr_off_t readbytes)
{
    kept_body_t *k = f->ctx;
    apr_bucket *e, *b;
    apr_status_t rv;

    if (APR_BRIGADE_EMPTY(k->kept)) {
        ap_remove_input_filter(f);
        return ap_get_brigade(f->next, bb, mode, block, readbytes);
    }
    if (mode != AP_MODE_READBYTES && mode != AP_MODE_SPECULATIVE) {
        return APR_ENOTIMPL;    /* nobody reads a request body by lines */
    }
    rv = apr_brigade_partition(k->kept, readbytes, &e);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        return rv;
    }
    if (mode == AP_MODE_SPECULATIVE) {
        /* a peek: copies, the bytes stay for the next read */
        for (b = APR_BRIGADE_FIRST(k->kept); b != e
             && !APR_BUCKET_IS_METADATA(b); b = APR_BUCKET_NEXT(b)) {
            apr_bucket *copy;

            rv = apr_bucket_copy(b, &copy);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            APR_BRIGADE_INSERT_TAIL(bb, copy);
        }
        return APR_SUCCESS;
    }
    while ((b = APR_BRIGADE_FIRST(k->kept)) != e) {
        APR_BUCKET_REMOVE(b);
        APR_BRIGADE_INSERT_TAIL(bb, b);
    }
    return APR_SUCCESS;
}

static apr_status_t prefix_cleanup(void *prefix)
{
    pyexec_body_prefix_clear(prefix);
    return APR_SUCCESS;
}

/* Read the body (declared: its Content-Length, 0 if none) into a kept
 * brigade that the filter gives back, until its end or until more than
 * limit bytes came; the first limit bytes, flat, in *prefix (freed with
 * r->pool) to look for the id in. OK, or the status for a body that
 * could not be read (a client too slow, a broken chunk). */
static int keep_body(request_rec *r, apr_size_t limit, apr_off_t declared,
                     pyexec_body_prefix_t **prefix, int *whole)
{
    kept_body_t *k = apr_pcalloc(r->pool, sizeof(*k));
    pyexec_body_prefix_t *p = apr_palloc(r->pool, sizeof(*p));
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    int seen_eos = 0, status = OK;

    pyexec_body_prefix_init(p, limit, (uint64_t)declared);
    apr_pool_cleanup_register(r->pool, p, prefix_cleanup,
                              apr_pool_cleanup_null);
    k->kept = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (status == OK && !seen_eos && !pyexec_body_prefix_over(p)) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         HUGE_STRING_LEN);

        if (rv != APR_SUCCESS) {
            status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            break;
        }
        while (status == OK && !APR_BRIGADE_EMPTY(bb)) {
            apr_bucket *e = APR_BRIGADE_FIRST(bb);
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
            }
            else if (!APR_BUCKET_IS_METADATA(e)) {
                rv = apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
                if (rv != APR_SUCCESS) {
                    status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
                    break;
                }
                if (pyexec_body_prefix_add(p, data, n) != 0) {
                    status = HTTP_INTERNAL_SERVER_ERROR;
                    break;
                }
            }
            /* kept past this read: its bytes may live in a buffer the
             * connection reuses */
            rv = apr_bucket_setaside(e, r->pool);
            if (rv != APR_SUCCESS && rv != APR_ENOTIMPL) {
                status = HTTP_INTERNAL_SERVER_ERROR;
                break;
            }
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(k->kept, e);
        }
    }
    /* from now on, mod_proxy's reads start with what was read here */
    ap_add_input_filter(KEPT_BODY_FILTER, k, r, r->connection);
    /* With an input filter in the way mod_proxy no longer trusts the
     * Content-Length and spools a body longer than 16 KiB to a
     * temporary file to count it. Ours gives back the very bytes, held
     * here already: have it stream them to the backend, chunked. */
    apr_table_setn(r->subprocess_env, "proxy-sendchunked", "1");
    *whole = seen_eos && !pyexec_body_prefix_over(p);
    *prefix = p;
    return status;
}

/* --- which requests, and their ids ------------------------------------ */

/* r->filename past "proxy:" if mod_proxy is sending r to our balancer
 * ("balancer://<name>" then '/', '?' or the end), else NULL. */
static const char *front_url(request_rec *r, const char *balancer)
{
    size_t n = strlen(balancer);
    const char *url;

    if (r->proxyreq != PROXYREQ_REVERSE || !r->filename
        || strncmp(r->filename, "proxy:", 6)) {
        return NULL;
    }
    url = r->filename + 6;
    if (strncasecmp(url, balancer, n)
        || (url[n] && url[n] != '/' && url[n] != '?')) {
        return NULL;
    }
    return url;
}

/* The query of the URL the balancer reads, without its id= parameters;
 * the first id= in *id (NULL if none). */
static char *query_without_ids(apr_pool_t *p, const char *query,
                               const char **id)
{
    char *out = apr_palloc(p, strlen(query) + 1), *w = out;
    const char *q = query;

    *id = NULL;
    while (*q) {
        size_t n = strcspn(q, "&");

        if (!strncmp(q, "id=", 3)) {
            if (!*id) {
                *id = apr_pstrmemdup(p, q + 3, n - 3);
            }
        }
        else if (n > 0) {
            if (w != out) {
                *w++ = '&';
            }
            memcpy(w, q, n);
            w += n;
        }
        q += n + (q[n] == '&');
    }
    *w = '\0';
    return out;
}

/* 1 if the query names a route (route=...). */
static int query_has_route(const char *query)
{
    const char *q = query;

    while (*q) {
        if (!strncmp(q, PYEXEC_ROUTE_PARAM "=",
                     sizeof(PYEXEC_ROUTE_PARAM))) {
            return 1;
        }
        q += strcspn(q, "&");
        q += *q == '&';
    }
    return 0;
}

/* The route in a session id's text; "" for an id without one, or for
 * text that is no id (the backend says what is wrong with it). */
static const char *route_of(apr_pool_t *p, const char *text, size_t len)
{
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];

    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t')) {
        len--;
    }
    if (pyexec_id_parse_routed(text, len, &id, route) != 0) {
        return "";
    }
    return apr_pstrdup(p, route);
}

/* What the JSON body says of the session. */
typedef enum {
    BODY_UNREAD,        /* not JSON, too long, broken: the backend answers */
    BODY_NEW,           /* no id: a new session */
    BODY_SESSION,       /* an id, with the route in *route ("" if none) */
} body_t;

static body_t body_session(request_rec *r, const char **route, int *status)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    apr_size_t limit = pyexec_request_body_max((size_t)c->max_code);
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t declared = 0;
    pyexec_request_t req;
    pyexec_body_prefix_t *prefix;
    int whole;
    body_t what = BODY_UNREAD;

    *status = OK;
    if (!pyexec_json_media_type(apr_table_get(r->headers_in,
                                              "Content-Type"))) {
        return BODY_UNREAD;
    }
    if (!cl || !ap_parse_strict_length(&declared, cl) || declared < 0) {
        declared = 0;   /* none, or one HTTP_IN refuses as we read */
    }
    if (declared > (apr_off_t)limit) {
        /* longer than the front reads, by the client's own word: not
         * read at all, so that mod_proxy streams it as it comes and the
         * backend refuses it by its length or takes it */
        return BODY_UNREAD;
    }
    *status = keep_body(r, limit, declared, &prefix, &whole);
    if (*status != OK || !whole) {
        return BODY_UNREAD;
    }
    /* no limit on the code here: the backend holds the session's own */
    if (pyexec_request_parse(prefix->data ? prefix->data : "", prefix->len,
                             (size_t)-1, &req) == 0) {
        what = req.has_id ? BODY_SESSION : BODY_NEW;
        *route = apr_pstrdup(r->pool, req.route);
        pyexec_request_clear(&req);
    }
    return what;
}

/* --- the hook --------------------------------------------------------- */

/* A URL the balancer reads with this query: r->args, from which mod_proxy
 * (2.4.71) builds the backend's URL once it has picked the backend; and
 * r->filename's own query, where older ones put it at their fixups. */
static void set_query(request_rec *r, const char *query)
{
    char *q = strchr(r->filename, '?');

    r->args = *query ? apr_pstrdup(r->pool, query) : NULL;
    r->parsed_uri.query = r->args;
    if (q) {
        r->filename = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool,
                                  r->filename, (size_t)(q - r->filename)),
                                  *query ? "?" : "", query, NULL);
    }
}

/* After mod_proxy's own fixups, which made r->filename the balancer's
 * URL ("proxy:balancer://<name>/<path>"). */
int pyexec_front_fixups(request_rec *r)
{
    const char *balancer = pyexec_state.conf.front;
    const char *url, *id, *header, *route = NULL, *original;
    char *rest;
    int status;

    if (!balancer || r->main) {
        return DECLINED;
    }
    url = front_url(r, balancer);
    if (!url) {
        pyexec_ids_release(r);
        return DECLINED;
    }
    /* the balancer looks for route= anywhere in its URL, the path first:
     * one there would beat the session's */
    if (strstr(url, PYEXEC_ROUTE_PARAM "=")
        && (!strchr(url, '?') || strstr(url, PYEXEC_ROUTE_PARAM "=")
                                 < strchr(url, '?'))) {
        pyexec_ids_take(r);
        return HTTP_BAD_REQUEST;
    }
    original = pyexec_ids_query(r);
    rest = query_without_ids(r->pool, original ? original : "", &id);
    header = apr_table_get(r->headers_in, PYEXEC_SESSION_HEADER);
    if (id) {
        /* the backend reads it from the header, where no log sees it */
        if (header && strcmp(header, id)) {
            pyexec_ids_take(r);
            return HTTP_BAD_REQUEST;
        }
        apr_table_setn(r->headers_in, PYEXEC_SESSION_HEADER, id);
        header = id;
    }
    if (r->method_number == M_POST) {
        const char *named = "";

        switch (body_session(r, &named, &status)) {
        case BODY_NEW:
            /* where the balancer likes, not where the cookie of an
             * earlier session points, unless the URL asks for a host */
            route = query_has_route(rest) ? NULL : "";
            break;
        case BODY_SESSION:
            route = *named ? named : NULL;
            break;
        case BODY_UNREAD:
            /* the cookie or the URL may still know the host */
            if (status != OK) {
                pyexec_ids_take(r);
                return status;
            }
            break;
        }
    }
    else if (header) {
        const char *named = route_of(r->pool, header, strlen(header));

        route = *named ? named : NULL;
    }
    if (route) {
        /* first in the query, ahead of any route= the client sent;
         * "route=." is a route of no host: the balancer picks one */
        rest = apr_pstrcat(r->pool, PYEXEC_ROUTE_PARAM "=.", route,
                           *rest ? "&" : "", rest, NULL);
        apr_table_setn(r->notes, NOTE_ROUTE, route);
    }
    set_query(r, rest);
    /* what is logged of the request: cleaned of ids */
    pyexec_ids_take(r);
    return DECLINED;
}

/* --- the front's errors, as JSON ---------------------------------------- */

static const char *error_message(request_rec *r, int status,
                                 const char *route)
{
    switch (status) {
    case HTTP_SERVICE_UNAVAILABLE:
        if (route && *route) {
            return apr_psprintf(r->pool, "The host that holds this session "
                                "(route \"%s\") is not available: it is "
                                "down, stopped or was taken out of the "
                                "balancer. A session cannot move to another "
                                "host; nothing was run. Try again later, or "
                                "send no id to start a new session.", route);
        }
        return "No host can take this request now: every backend is down "
               "or out of the balancer. Nothing was run. Try again later.";
    case HTTP_BAD_GATEWAY:
        return "The host that holds this session failed while answering; "
               "the run may or may not have happened. If the host went "
               "down, its sessions are gone.";
    case HTTP_GATEWAY_TIME_OUT:
        return "The host that holds this session did not answer in time; "
               "the run may or may not have happened.";
    case HTTP_BAD_REQUEST:
        return "The front could not read this request: its body is broken, "
               "or the query and the " PYEXEC_SESSION_HEADER " header name "
               "different sessions.";
    case HTTP_REQUEST_TIME_OUT:
        return "The request body arrived too slowly.";
    case HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "The request body is too large.";
    default:
        return apr_psprintf(r->pool, "The front could not handle this "
                            "request: %s.", ap_get_status_line(status) + 4);
    }
}

/* An ErrorDocument's request: its r->prev is the request that failed,
 * whose status is the answer's. */
int pyexec_error_handler(request_rec *r)
{
    const request_rec *failed = r->prev;
    int status;
    char *body;

    if (!r->handler || strcmp(r->handler, PYEXEC_ERROR_HANDLER)) {
        return DECLINED;
    }
    status = failed && ap_is_HTTP_ERROR(failed->status) ? failed->status
                                                        : HTTP_NOT_FOUND;
    body = pyexec_response_json(NULL, NULL, 0, NULL, 0,
                                failed ? error_message(r, status,
                                         apr_table_get(failed->notes,
                                                       NOTE_ROUTE))
                                : "No such resource.");
    if (!body) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
    }
    pyexec_send_json(r, status, body);
    free(body);
    return OK;
}

void pyexec_front_register(void)
{
    ap_register_input_filter(KEPT_BODY_FILTER, kept_body_filter, NULL,
                             AP_FTYPE_RESOURCE);
}
