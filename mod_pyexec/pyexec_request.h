/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The /execute JSON contract: parsing a request body and building the
 * answer. Kept free of httpd so that the fuzzers and unit tests drive
 * exactly the code the handler runs.
 */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "pyexec_id.h"
#include "pyexec_protocol.h"

typedef struct {
    int status;             /* 0 when parsed; else the HTTP status */
    char error[200];        /* what is wrong, for the client */
    char *code;             /* malloc()ed, NUL terminated */
    size_t code_len;
    int display_result;     /* "display_result": true */
    char *stdin_text;       /* "stdin", malloc()ed, or NULL */
    size_t stdin_len;
    int has_id;
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];   /* the id's route, or "" */
} pyexec_request_t;

/* Parse a request body. On failure status is 400 or 413 and error says
 * why; on success the caller frees req->code and req->stdin_text with
 * pyexec_request_clear(). code and stdin count together against
 * max_code. */
int pyexec_request_parse(const char *body, size_t len, size_t max_code,
                         pyexec_request_t *req);
void pyexec_request_clear(pyexec_request_t *req);

/* The largest body a request with max_code bytes of code can need: JSON
 * escapes may take six bytes per source byte. */
#define pyexec_request_body_max(max_code) ((max_code) * 6 + 4096)

/* The first `limit` bytes of a request body, in one flat buffer that
 * grows as the body arrives in pieces (from the size the client
 * declared, by doubling); bytes past the limit are counted, never kept.
 * The front gathers this much to find a session id in a body it passes
 * on whole. */
typedef struct {
    char *data;         /* pyexec_io_alloc()ed, NUL terminated; NULL
                         * until the first byte is kept */
    size_t len;         /* bytes kept: never more than limit */
    size_t cap;         /* data holds cap + 1 bytes */
    size_t limit;
    size_t first;       /* the first buffer's size */
    uint64_t seen;      /* every byte offered, kept or not */
} pyexec_body_prefix_t;

/* declared: the Content-Length, or 0 when the client sent none. */
void pyexec_body_prefix_init(pyexec_body_prefix_t *b, size_t limit,
                             uint64_t declared);
/* Keep what still fits of n more bytes and count all n: 0, or -1 when
 * out of memory (b is then as before the call). */
int pyexec_body_prefix_add(pyexec_body_prefix_t *b, const char *bytes,
                           size_t n);
/* 1 once more bytes came than the limit keeps. */
#define pyexec_body_prefix_over(b) ((b)->seen > (uint64_t)(b)->limit)
void pyexec_body_prefix_clear(pyexec_body_prefix_t *b);

/* 1 if a Content-Type is JSON: application/json or application/...+json,
 * with any parameters. */
int pyexec_json_media_type(const char *ct);

/* 1 if buf is well-formed UTF-8 (no overlongs, no surrogates). */
int pyexec_utf8_valid(const char *buf, size_t len);

/* The contract's answer to a run: {"id", "stdout", "stderr", "display",
 * "error"}, compact, each member left out when NULL or empty. display
 * is a RESULT's display section (pyexec_protocol.h) that passed
 * pyexec_answer_display_check(). */
typedef struct {
    const char *id;
    const char *out;
    size_t out_len;
    const char *err;
    size_t err_len;
    const char *error;
    const unsigned char *display;
    size_t display_len;
} pyexec_answer_t;

/* Whether a display section of count items is one the answer may carry
 * as it is: each item a JSON object of exactly "data" (an object of MIME
 * type to string; to any JSON value for a JSON type) and "metadata" (an
 * object), offsets in order and within stdout's code points. Its bytes
 * come from the helper, which user code can write for. 0, or -1 with
 * *why set. */
/* The shape check alone, of one item (also of one streamed): 1 if it
 * may be passed on. */
int pyexec_answer_display_item_ok(const pyexec_display_item_t *item);

int pyexec_answer_display_check(const unsigned char *display, size_t len,
                                uint32_t count, const char *out,
                                size_t out_len, const char **why);

/* Its length in bytes, without building it. */
size_t pyexec_answer_len(const pyexec_answer_t *a);

/* Write it in pieces of at most PYEXEC_ANSWER_CHUNK bytes through
 * emit(ctx, piece, len), so that an answer of many megabytes (1 MiB of
 * control characters is 6 MiB of JSON) is never held whole. Returns 0,
 * or the first non-zero value emit returned. The bytes are exactly what
 * jansson's json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) would write;
 * output that is not valid UTF-8 (a helper that broke the protocol) is
 * repaired with U+FFFD, as pyexec_response_json() does. */
#define PYEXEC_ANSWER_CHUNK 8000
int pyexec_answer_write(const pyexec_answer_t *a,
                        int (*emit)(void *ctx, const char *piece, size_t len),
                        void *ctx);

/* The events of a streamed answer (text/event-stream), each written
 * through emit as pyexec_answer_write() writes the answer:
 *   event: stdout (or stderr)   data: {"text": "..."}
 *   event: display              data: the item, with its stdout_offset
 *   event: result               data: the answer, as it would be whole
 * Their data is one line of compact JSON: no raw line break can end an
 * event early (display items with one are refused before). */
int pyexec_event_text(const char *event, const char *text, size_t len,
                      int (*emit)(void *ctx, const char *piece, size_t len),
                      void *ctx);
int pyexec_event_display(const unsigned char *json, size_t len,
                         uint32_t stdout_offset,
                         int (*emit)(void *ctx, const char *piece,
                                     size_t len),
                         void *ctx);
int pyexec_event_answer(const pyexec_answer_t *a,
                        int (*emit)(void *ctx, const char *piece, size_t len),
                        void *ctx);

/* The same answer, built whole: a malloc()ed NUL terminated string
 * (free()), or NULL when out of memory. For short answers and tests. */
char *pyexec_response_json(const char *id,
                           const char *out, size_t out_len,
                           const char *err, size_t err_len,
                           const char *error);

/* What GET of a session tells (docs/api.md). */
typedef struct {
    const char *id;
    int64_t created_usec;       /* wall clock, usec since the epoch */
    int64_t last_used_usec;     /* wall clock */
    uint64_t executions;
    uint64_t memory_bytes;      /* after its last execution */
    int running;                /* an execution in progress or queued */
    int64_t timeout_usec;       /* the limits it was started with */
    uint32_t max_output;
    uint32_t max_display;
    uint32_t max_code;
} pyexec_session_info_t;

/* Its JSON, malloc()ed (free()), or NULL when out of memory. */
char *pyexec_session_json(const pyexec_session_info_t *info);

/* {"sessions": [...]}, for an operator's listing (pyexec-sessions). */
char *pyexec_session_list_json(const pyexec_session_info_t *infos,
                               size_t n);

/* "2026-11-26T10:12:00.123Z" into out (at least 25 bytes). */
void pyexec_rfc3339(int64_t usec, char *out, size_t len);

#endif /* PYEXEC_REQUEST_H */
