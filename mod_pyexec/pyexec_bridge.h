/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * A worker's end of a session: from finding the session (or binding a
 * spare helper to a new one) to the outcome of one run. The handler
 * (pyexec_handler.c) calls pyexec_bridge_run() and turns the outcome
 * into an answer; everything between, the registry, the helper's
 * socket and the clock, is pyexec_bridge.c's.
 */
#ifndef PYEXEC_BRIDGE_H
#define PYEXEC_BRIDGE_H

#include <httpd.h>

#include "pyexec_id.h"
#include "pyexec_registry.h"
#include "pyexec_request.h"

typedef enum {
    PYEXEC_RUN_OK = 0,          /* ran: out and err hold what it wrote */
    PYEXEC_RUN_TIMEOUT,         /* past the session's time limit: ended */
    PYEXEC_RUN_MEMORY,          /* past its memory limit: ended */
    PYEXEC_RUN_DIED,            /* the helper ended otherwise: died_why */
    PYEXEC_RUN_BUSY,            /* never got its turn; session untouched */
    PYEXEC_RUN_LOCAL,           /* this worker failed; session untouched */
    PYEXEC_RUN_TOO_LARGE,       /* above the session's own code limit */
} pyexec_outcome_t;

typedef struct {
    pyexec_outcome_t outcome;
    pyexec_end_reason_t died_why;   /* PYEXEC_RUN_DIED */
    int64_t exec_usec;          /* the run's time, as Server-Timing says */
    const char *out;            /* PYEXEC_RUN_OK: stdout and stderr, */
    size_t out_len;             /* owned by the request's pool */
    const char *err;
    size_t err_len;
    const unsigned char *display;   /* its display items, checked */
    size_t display_len;
    uint32_t max_code;          /* the session's code limit */
    int64_t retry_usec;         /* refused or BUSY: when trying again
                                   has a chance (the Retry-After) */
    char id[PYEXEC_ID_TEXT_MAX + 1];  /* the session's id, as clients see it */
} pyexec_run_t;

/* Where a streamed run's output goes as it comes (Accept:
 * text/event-stream; pyexec_handler.c). start() is called once the
 * session is this request's, before the code is sent; output() with
 * each piece the helper sends, checked against the session's caps:
 * stdout or stderr text (kind PYEXEC_OUTPUT_STDOUT/_STDERR), or one
 * display item's JSON with its offset (PYEXEC_OUTPUT_DISPLAY). A
 * non-zero return (the client is gone) stops the calls; the run goes on
 * to its end, so that the session stays as its code leaves it. */
typedef struct {
    void (*start)(void *ctx, const pyexec_run_t *run);
    int (*output)(void *ctx, unsigned kind, const unsigned char *data,
                  size_t len, uint32_t stdout_offset);
    int (*flush)(void *ctx);    /* nothing more waits just now */
    void *ctx;
} pyexec_stream_sink_t;

/* Per worker process: the connections kept for sessions' next requests
 * (after the registry is attached). */
void pyexec_bridge_child_init(apr_pool_t *p, server_rec *s);

/* Run req's code (with its stdin) in the session its id names, or in a
 * new one if it has none; with display_result, its final bare
 * expression's value is displayed; with a sink, its output is streamed
 * there as it is written.
 * Returns OK with the outcome in *run, or, with nothing run:
 * HTTP_NOT_FOUND (no such session), HTTP_SERVICE_UNAVAILABLE (the
 * table is full), HTTP_TOO_MANY_REQUESTS (this client has
 * PyExecMaxClientSessions live), both with run->retry_usec,
 * HTTP_GATEWAY_TIME_OUT (no helper became ready in time),
 * HTTP_INTERNAL_SERVER_ERROR. */
int pyexec_bridge_run(request_rec *r, const pyexec_request_t *req,
                      const pyexec_stream_sink_t *sink, pyexec_run_t *run);

/* "ok", "timeout", ... for the access log's pyexec-outcome note. */
const char *pyexec_outcome_name(const pyexec_run_t *run);

#endif /* PYEXEC_BRIDGE_H */
