/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The JSON contract (pyexec_request.h). Core: runs in httpd's workers,
 * the unit tests and the fuzzers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_request.h"

int pyexec_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    const unsigned char *end = p + len;

    while (p < end) {
        unsigned char c = *p;
        size_t need;
        unsigned int cp, min;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1; cp = c & 0x1f; min = 0x80;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2; cp = c & 0x0f; min = 0x800;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            need = 3; cp = c & 0x07; min = 0x10000;
        }
        else {
            return 0;
        }
        if ((size_t)(end - p) <= need) {
            return 0;
        }
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += need + 1;
    }
    return 1;
}

/* Replace every byte that is not part of well-formed UTF-8 with '?':
 * parser messages quote the input and may cut a character in two. */
static void utf8_scrub(char *s)
{
    size_t len = strlen(s), i = 0;

    while (i < len) {
        size_t n;

        for (n = 1; n <= 4 && i + n <= len; n++) {
            if (pyexec_utf8_valid(s + i, n)) {
                break;
            }
        }
        if (n <= 4 && i + n <= len) {
            i += n;
        }
        else {
            s[i++] = '?';
        }
    }
}

static int fail(pyexec_request_t *req, int status, const char *msg)
{
    req->status = status;
    snprintf(req->error, sizeof(req->error), "%s", msg);
    return -1;
}

int pyexec_request_parse(const char *body, size_t len, size_t max_code,
                         pyexec_request_t *req)
{
    json_t *root, *code, *id, *dr, *in;
    json_error_t jerr;
    const char *s;
    size_t slen;

    memset(req, 0, sizeof(*req));
    if (len == 0) {
        return fail(req, 400, "Request body is empty: send a JSON object "
                    "such as {\"code\": \"print(1)\"}.");
    }
    if (!pyexec_utf8_valid(body, len)) {
        return fail(req, 400, "Request body is not valid UTF-8.");
    }
    /* NULs inside strings are let through the parser so that we can say
     * plainly what is wrong with them below. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &jerr);
    if (!root) {
        req->status = 400;
        snprintf(req->error, sizeof(req->error),
                 "Invalid JSON: %s (line %d, column %d).", jerr.text,
                 jerr.line, jerr.column);
        utf8_scrub(req->error);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(req, 400, "Request body must be a JSON object.");
    }
    code = json_object_get(root, "code");
    if (!code) {
        json_decref(root);
        return fail(req, 400, "Missing 'code': send the Python source as "
                    "a string.");
    }
    if (!json_is_string(code)) {
        json_decref(root);
        return fail(req, 400, "'code' must be a string.");
    }
    dr = json_object_get(root, "display_result");
    if (dr) {
        if (!json_is_boolean(dr)) {
            json_decref(root);
            return fail(req, 400, "'display_result' must be true or false.");
        }
        req->display_result = json_is_true(dr);
    }
    id = json_object_get(root, "id");
    if (id) {
        if (!json_is_string(id)) {
            json_decref(root);
            return fail(req, 400, "'id' must be a string.");
        }
        if (pyexec_id_parse_routed(json_string_value(id),
                                   json_string_length(id), &req->id,
                                   req->route) != 0) {
            json_decref(root);
            return fail(req, 400, "'id' is not a session id: expected the "
                        "id a previous answer returned (a UUID, with "
                        "\".<route>\" after it on a host with a route).");
        }
        req->has_id = 1;
    }
    in = json_object_get(root, "stdin");
    if (in && !json_is_string(in)) {
        json_decref(root);
        return fail(req, 400, "'stdin' must be a string.");
    }
    s = json_string_value(code);
    slen = json_string_length(code);
    if (slen > max_code) {
        json_decref(root);
        req->status = 413;
        snprintf(req->error, sizeof(req->error),
                 "'code' is %zu bytes; the limit is %zu.", slen, max_code);
        return -1;
    }
    if (in && json_string_length(in) > max_code - slen) {
        req->status = 413;
        snprintf(req->error, sizeof(req->error),
                 "'code' and 'stdin' are %zu bytes together; the limit is "
                 "%zu.", slen + json_string_length(in), max_code);
        json_decref(root);
        return -1;
    }
    if (memchr(s, '\0', slen)) {
        json_decref(root);
        return fail(req, 400, "'code' must not contain NUL characters.");
    }
    req->code = malloc(slen + 1);
    if (!req->code) {
        json_decref(root);
        return fail(req, 500, "Out of memory.");
    }
    memcpy(req->code, s, slen);
    req->code[slen] = '\0';
    req->code_len = slen;
    if (in) {
        /* NULs are data a program may read */
        req->stdin_len = json_string_length(in);
        req->stdin_text = malloc(req->stdin_len + 1);
        if (!req->stdin_text) {
            json_decref(root);
            pyexec_request_clear(req);
            return fail(req, 500, "Out of memory.");
        }
        memcpy(req->stdin_text, json_string_value(in), req->stdin_len);
        req->stdin_text[req->stdin_len] = '\0';
    }
    json_decref(root);
    return 0;
}

int pyexec_json_media_type(const char *ct)
{
    const char *semi;
    size_t n;

    if (!ct) {
        return 0;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    semi = strchr(ct, ';');
    n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) {
        return 1;
    }
    /* application/<something>+json */
    return n > 17 && !strncasecmp(ct, "application/", 12)
           && !strncasecmp(ct + n - 5, "+json", 5);
}

void pyexec_request_clear(pyexec_request_t *req)
{
    free(req->code);
    req->code = NULL;
    req->code_len = 0;
    free(req->stdin_text);
    req->stdin_text = NULL;
    req->stdin_len = 0;
}

/* --- the first bytes of a body ---------------------------------------- */

/* a body without a length gets room as it comes */
#define PREFIX_FIRST_UNDECLARED 16384
#define PREFIX_FIRST_MIN 1024

void pyexec_body_prefix_init(pyexec_body_prefix_t *b, size_t limit,
                             uint64_t declared)
{
    size_t first = declared ? (declared < limit ? (size_t)declared : limit)
                            : PREFIX_FIRST_UNDECLARED;

    memset(b, 0, sizeof(*b));
    b->limit = limit;
    first = first < PREFIX_FIRST_MIN ? PREFIX_FIRST_MIN : first;
    b->first = first < limit ? first : limit;
}

int pyexec_body_prefix_add(pyexec_body_prefix_t *b, const char *bytes,
                           size_t n)
{
    size_t take = b->len < b->limit ? b->limit - b->len : 0;

    take = n < take ? n : take;
    if (b->len + take > b->cap) {
        /* only with take > 0: len never passes the limit, nor cap */
        size_t cap = b->cap ? b->cap : b->first;
        char *data;

        while (cap < b->len + take) {
            cap = cap > b->limit / 2 ? b->limit : cap * 2;
        }
        data = pyexec_io_alloc(cap + 1);
        if (!data) {
            return -1;
        }
        if (b->len > 0) {
            memcpy(data, b->data, b->len);
        }
        pyexec_io_free(b->data);
        b->data = data;
        b->cap = cap;
    }
    if (take > 0) {
        memcpy(b->data + b->len, bytes, take);
        b->len += take;
        b->data[b->len] = '\0';
    }
    b->seen += n;
    return 0;
}

void pyexec_body_prefix_clear(pyexec_body_prefix_t *b)
{
    pyexec_io_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->seen = 0;
}

/* --- the answer -------------------------------------------------------- */

/* Output from the helper is valid UTF-8 by construction; the answer
 * repairs it anyway rather than dropping it, should a peer ever break
 * that: each byte that starts no valid character becomes U+FFFD. */

/* The length of the valid character at s[0..left), or 0 if none starts
 * there. Its lead byte says how long it must be; pyexec_utf8_valid()
 * then judges the continuation (overlongs, surrogates, range). */
static size_t utf8_char(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

    return n <= left && pyexec_utf8_valid(s, n) ? n : 0;
}

/* A JSON writer that fills a buffer and hands it on when full; or, with
 * no buffer, only counts. */
typedef struct {
    char *buf;                  /* PYEXEC_ANSWER_CHUNK bytes */
    size_t used;
    size_t total;               /* everything put, for the length pass */
    int counting;               /* only count: nothing is emitted */
    int (*emit)(void *ctx, const char *piece, size_t len);
    void *ctx;
    int rc;                     /* the first failure of emit */
} jw_t;

static void jw_flush(jw_t *w)
{
    if (w->used && !w->rc && !w->counting) {
        w->rc = w->emit(w->ctx, w->buf, w->used);
    }
    w->used = 0;
}

static void jw_put(jw_t *w, const char *s, size_t n)
{
    w->total += n;
    if (w->counting) {
        return;
    }
    while (n > 0 && !w->rc) {
        size_t room = PYEXEC_ANSWER_CHUNK - w->used;
        size_t k = n < room ? n : room;

        memcpy(w->buf + w->used, s, k);
        w->used += k;
        s += k;
        n -= k;
        if (w->used == PYEXEC_ANSWER_CHUNK) {
            jw_flush(w);
        }
    }
}

/* s as a JSON string, quotes included, escaped as jansson escapes:
 * the quote, the backslash and control characters, nothing else. */
static void jw_string(jw_t *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0, run = 0;

    jw_put(w, "\"", 1);
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t n, elen = 0;

        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (c >= 0x80 && (n = utf8_char(s + i, len - i)) > 0) {
            i += n;
            run += n;
            continue;
        }
        /* pass on the plain run before this byte, then its escape */
        jw_put(w, s + i - run, run);
        run = 0;
        switch (c) {
        case '"':  memcpy(esc, "\\\"", 2); elen = 2; break;
        case '\\': memcpy(esc, "\\\\", 2); elen = 2; break;
        case '\b': memcpy(esc, "\\b", 2); elen = 2; break;
        case '\f': memcpy(esc, "\\f", 2); elen = 2; break;
        case '\n': memcpy(esc, "\\n", 2); elen = 2; break;
        case '\r': memcpy(esc, "\\r", 2); elen = 2; break;
        case '\t': memcpy(esc, "\\t", 2); elen = 2; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
            break;
        }
        if (elen) {
            jw_put(w, esc, elen);
        }
        else {
            jw_put(w, "\xef\xbf\xbd", 3);       /* U+FFFD */
        }
        i++;
    }
    jw_put(w, s + i - run, run);
    jw_put(w, "\"", 1);
}

static void jw_member(jw_t *w, int *first, const char *key, const char *s,
                      size_t len)
{
    jw_put(w, *first ? "{\"" : ",\"", 2);
    jw_put(w, key, strlen(key));
    jw_put(w, "\":", 2);
    jw_string(w, s, len);
    *first = 0;
}

/* An item's JSON is passed on as the helper wrote it, once checked:
 * its closing brace makes room for where it fell in stdout. */
static void jw_item(jw_t *w, const unsigned char *json, size_t len,
                    uint32_t stdout_offset)
{
    char tail[40];
    int tlen;

    while (len > 0 && strchr(" \t\r\n", json[len - 1])) {
        len--;
    }
    jw_put(w, (const char *)json, len - 1);
    tlen = snprintf(tail, sizeof(tail), ",\"stdout_offset\":%u}",
                    (unsigned)stdout_offset);
    jw_put(w, tail, (size_t)tlen);
}

static void jw_display(jw_t *w, int *first, const unsigned char *section,
                       size_t len)
{
    pyexec_display_item_t item;
    size_t pos = 0;
    int n = 0;

    jw_put(w, *first ? "{\"display\":[" : ",\"display\":[", 12);
    while (pyexec_display_item_next(section, len, &pos, &item) == 1) {
        if (n++) {
            jw_put(w, ",", 1);
        }
        jw_item(w, item.json, item.len, item.stdout_offset);
    }
    jw_put(w, "]", 1);
    *first = 0;
}

static void jw_answer(jw_t *w, const pyexec_answer_t *a)
{
    int first = 1;

    if (a->id) {
        jw_member(w, &first, "id", a->id, strlen(a->id));
    }
    if (a->out && a->out_len) {
        jw_member(w, &first, "stdout", a->out, a->out_len);
    }
    if (a->err && a->err_len) {
        jw_member(w, &first, "stderr", a->err, a->err_len);
    }
    if (a->display && a->display_len) {
        jw_display(w, &first, a->display, a->display_len);
    }
    if (a->error) {
        jw_member(w, &first, "error", a->error, strlen(a->error));
    }
    jw_put(w, first ? "{}" : "}", first ? 2 : 1);
    jw_flush(w);
}

size_t pyexec_answer_len(const pyexec_answer_t *a)
{
    jw_t w;

    memset(&w, 0, sizeof(w));
    w.counting = 1;
    jw_answer(&w, a);
    return w.total;
}

int pyexec_answer_write(const pyexec_answer_t *a,
                        int (*emit)(void *ctx, const char *piece, size_t len),
                        void *ctx)
{
    char buf[PYEXEC_ANSWER_CHUNK];
    jw_t w;

    memset(&w, 0, sizeof(w));
    w.buf = buf;
    w.emit = emit;
    w.ctx = ctx;
    jw_answer(&w, a);
    return w.rc;
}

/* --- the events of a streamed answer ----------------------------------- */

static void jw_event_start(jw_t *w, char *buf, const char *event,
                           int (*emit)(void *, const char *, size_t),
                           void *ctx)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->emit = emit;
    w->ctx = ctx;
    jw_put(w, "event: ", 7);
    jw_put(w, event, strlen(event));
    jw_put(w, "\ndata: ", 7);
}

static int jw_event_end(jw_t *w)
{
    jw_put(w, "\n\n", 2);
    jw_flush(w);
    return w->rc;
}

int pyexec_event_text(const char *event, const char *text, size_t len,
                      int (*emit)(void *ctx, const char *piece, size_t len),
                      void *ctx)
{
    char buf[PYEXEC_ANSWER_CHUNK];
    jw_t w;

    jw_event_start(&w, buf, event, emit, ctx);
    jw_put(&w, "{\"text\":", 8);
    jw_string(&w, text, len);
    jw_put(&w, "}", 1);
    return jw_event_end(&w);
}

int pyexec_event_display(const unsigned char *json, size_t len,
                         uint32_t stdout_offset,
                         int (*emit)(void *ctx, const char *piece,
                                     size_t len),
                         void *ctx)
{
    char buf[PYEXEC_ANSWER_CHUNK];
    jw_t w;

    jw_event_start(&w, buf, "display", emit, ctx);
    jw_item(&w, json, len, stdout_offset);
    return jw_event_end(&w);
}

int pyexec_event_answer(const pyexec_answer_t *a,
                        int (*emit)(void *ctx, const char *piece, size_t len),
                        void *ctx)
{
    char buf[PYEXEC_ANSWER_CHUNK];
    jw_t w;

    jw_event_start(&w, buf, "result", emit, ctx);
    jw_answer(&w, a);
    return jw_event_end(&w);
}

typedef struct {
    char *text;
    size_t used;
} whole_t;

static int whole_emit(void *ctx, const char *piece, size_t len)
{
    whole_t *wh = ctx;

    memcpy(wh->text + wh->used, piece, len);
    wh->used += len;
    return 0;
}

char *pyexec_response_json(const char *id,
                           const char *out, size_t out_len,
                           const char *err, size_t err_len,
                           const char *error)
{
    pyexec_answer_t a = { id, out, out_len, err, err_len, error, NULL, 0 };
    size_t len = pyexec_answer_len(&a);
    whole_t wh = { NULL, 0 };

    if (!len || !(wh.text = malloc(len + 1))) {
        return NULL;
    }
    if (pyexec_answer_write(&a, whole_emit, &wh) != 0 || wh.used != len) {
        free(wh.text);
        return NULL;
    }
    wh.text[len] = '\0';
    return wh.text;
}

/* --- display items from the helper ------------------------------------ */

/* Display items are checked without building them: a tree of an item's
 * values would cost the worker many times the item's size (a list of a
 * million empty objects is a few MB of text and hundreds in a tree).
 * This is RFC 8259's grammar, with strings held to valid UTF-8 and no
 * raw control characters, and nesting held to JSON_DEPTH_MAX; numbers of
 * any size, as Python writes them. */
#define JSON_DEPTH_MAX 4096

typedef const unsigned char *jp_t;

static jp_t json_ws(jp_t p, jp_t end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static int hex4(jp_t p, jp_t end)
{
    if (end - p < 4) {
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) {
            return 0;
        }
    }
    return 1;
}

/* A string at p (its opening quote): the byte after it, or NULL. */
static jp_t json_string_end(jp_t p, jp_t end)
{
    p++;
    while (p < end) {
        unsigned char c = *p;
        size_t n;

        if (c == '"') {
            return p + 1;
        }
        if (c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            if (end - p < 2) {
                return NULL;
            }
            if (p[1] == 'u') {
                if (!hex4(p + 2, end)) {
                    return NULL;
                }
                p += 6;
            }
            else if (p[1] && strchr("\"\\/bfnrt", p[1])) {
                p += 2;
            }
            else {
                return NULL;
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        n = utf8_char((const char *)p, (size_t)(end - p));
        if (!n) {
            return NULL;
        }
        p += n;
    }
    return NULL;
}

static jp_t json_number_end(jp_t p, jp_t end)
{
    jp_t q;

    if (p < end && *p == '-') {
        p++;
    }
    if (p < end && *p == '0') {
        p++;
    }
    else {
        for (q = p; p < end && *p >= '0' && *p <= '9'; p++) {
        }
        if (p == q) {
            return NULL;
        }
    }
    if (p < end && *p == '.') {
        for (q = ++p; p < end && *p >= '0' && *p <= '9'; p++) {
        }
        if (p == q) {
            return NULL;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        for (q = p; p < end && *p >= '0' && *p <= '9'; p++) {
        }
        if (p == q) {
            return NULL;
        }
    }
    return p;
}

/* Any JSON value at p (after whitespace): the byte after it, or NULL.
 * Iterative, its nesting on a small stack of closing brackets. */
static jp_t json_value_end(jp_t p, jp_t end)
{
    unsigned char stack[JSON_DEPTH_MAX];
    int depth = 0;

value:
    p = json_ws(p, end);
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case '{':
    case '[':
        if (depth == JSON_DEPTH_MAX) {
            return NULL;
        }
        stack[depth++] = *p == '{' ? '}' : ']';
        p = json_ws(p + 1, end);
        if (p < end && *p == stack[depth - 1]) {
            depth--;
            p++;
            goto after;
        }
        if (stack[depth - 1] == '}') {
            goto key;
        }
        goto value;
    case '"':
        p = json_string_end(p, end);
        break;
    case 't':
        p = end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
        break;
    case 'f':
        p = end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
        break;
    case 'n':
        p = end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
        break;
    default:
        p = json_number_end(p, end);
        break;
    }
    if (!p) {
        return NULL;
    }
after:
    if (depth == 0) {
        return p;
    }
    p = json_ws(p, end);
    if (p >= end) {
        return NULL;
    }
    if (*p == stack[depth - 1]) {
        depth--;
        p++;
        goto after;
    }
    if (*p != ',') {
        return NULL;
    }
    p++;
    if (stack[depth - 1] == ']') {
        goto value;
    }
key:
    p = json_ws(p, end);
    if (p >= end || *p != '"' || !(p = json_string_end(p, end))) {
        return NULL;
    }
    p = json_ws(p, end);
    if (p >= end || *p != ':') {
        return NULL;
    }
    p++;
    goto value;
}

/* A member's key at p (its opening quote) is this one, as written. */
static int key_is(jp_t p, jp_t kend, const char *want)
{
    size_t n = strlen(want);

    return (size_t)(kend - p) == n + 2 && memcmp(p + 1, want, n) == 0;
}

/* application/json or ...+json: a key's raw text, quotes included */
static int json_mime_key(jp_t p, jp_t kend)
{
    size_t n = (size_t)(kend - p);

    return key_is(p, kend, "application/json")
           || (n >= 7 && memcmp(kend - 6, "+json\"", 6) == 0);
}

/* {"mime": "text", ...}, strings but for JSON types: after it, or NULL */
static jp_t json_data_end(jp_t p, jp_t end)
{
    int members = 0;

    p = json_ws(p, end);
    if (p >= end || *p != '{') {
        return NULL;
    }
    p = json_ws(p + 1, end);
    for (;;) {
        jp_t k = p, kend;

        /* a member, also after a comma: none is no data at all */
        if (p >= end || *p != '"' || !(kend = json_string_end(p, end))) {
            return NULL;
        }
        p = json_ws(kend, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = json_ws(p + 1, end);
        if (json_mime_key(k, kend)) {
            p = json_value_end(p, end);
        }
        else {
            p = p < end && *p == '"' ? json_string_end(p, end) : NULL;
        }
        if (!p) {
            return NULL;
        }
        members++;
        p = json_ws(p, end);
        if (p < end && *p == ',') {
            p = json_ws(p + 1, end);
            continue;
        }
        break;
    }
    return members > 0 && p < end && *p == '}' ? p + 1 : NULL;
}

int pyexec_answer_display_item_ok(const pyexec_display_item_t *item)
{
    jp_t p = item->json, end = item->json + item->len;
    int seen_data = 0, seen_md = 0;

    /* JSON has line breaks only as whitespace, which compact JSON has
     * none of; one would end an event of a stream early */
    if (memchr(p, '\n', item->len) || memchr(p, '\r', item->len)) {
        return 0;
    }
    /* exactly {"data": {...}, "metadata": {...}}, in either order */
    p = json_ws(p, end);
    if (p >= end || *p != '{') {
        return 0;
    }
    p++;
    for (int i = 0; i < 2; i++) {
        jp_t k, kend;

        p = json_ws(p, end);
        if (i == 1) {
            if (p >= end || *p != ',') {
                return 0;
            }
            p = json_ws(p + 1, end);
        }
        k = p;
        if (p >= end || *p != '"' || !(kend = json_string_end(p, end))) {
            return 0;
        }
        p = json_ws(kend, end);
        if (p >= end || *p != ':') {
            return 0;
        }
        p = json_ws(p + 1, end);
        if (key_is(k, kend, "data") && !seen_data) {
            seen_data = 1;
            p = json_data_end(p, end);
        }
        else if (key_is(k, kend, "metadata") && !seen_md && p < end
                 && *p == '{') {
            seen_md = 1;
            p = json_value_end(p, end);
        }
        else {
            return 0;
        }
        if (!p) {
            return 0;
        }
    }
    p = json_ws(p, end);
    if (p >= end || *p != '}') {
        return 0;
    }
    /* the writer replaces this closing brace: only whitespace after it */
    return json_ws(p + 1, end) == end;
}

int pyexec_answer_display_check(const unsigned char *display, size_t len,
                                uint32_t count, const char *out,
                                size_t out_len, const char **why)
{
    pyexec_display_item_t item;
    size_t pos = 0, counted = 0;
    uint32_t n = 0, chars = 0, last = 0;
    int rc;

    while ((rc = pyexec_display_item_next(display, len, &pos, &item)) == 1) {
        if (++n > count) {
            *why = "more display items than it said";
            return -1;
        }
        /* code points of stdout up to the offset, counted on as the
         * offsets grow */
        while (chars < item.stdout_offset && counted < out_len) {
            if (((unsigned char)out[counted++] & 0xc0) != 0x80) {
                chars++;
            }
        }
        if (item.stdout_offset < last || item.stdout_offset > chars) {
            *why = "a display item outside its stdout";
            return -1;
        }
        last = item.stdout_offset;
        if (!pyexec_answer_display_item_ok(&item)) {
            *why = "a malformed display item";
            return -1;
        }
    }
    if (rc < 0 || n != count) {
        *why = "a malformed display section";
        return -1;
    }
    return 0;
}

void pyexec_rfc3339(int64_t usec, char *out, size_t len)
{
    time_t secs = (time_t)(usec / 1000000);
    struct tm tm;
    size_t n;

    if (!gmtime_r(&secs, &tm)
        || (n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(out, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out + n, len - n, ".%03dZ", (int)(usec % 1000000 / 1000));
}

static json_t *session_object(const pyexec_session_info_t *info)
{
    json_t *obj = json_object(), *limits = json_object();
    char created[32], last[32];

    if (!obj || !limits) {
        json_decref(obj);
        json_decref(limits);
        return NULL;
    }
    pyexec_rfc3339(info->created_usec, created, sizeof(created));
    pyexec_rfc3339(info->last_used_usec, last, sizeof(last));
    json_object_set_new(obj, "id", json_string(info->id));
    json_object_set_new(obj, "created", json_string(created));
    json_object_set_new(obj, "last_used", json_string(last));
    json_object_set_new(obj, "executions",
                        json_integer((json_int_t)info->executions));
    json_object_set_new(obj, "memory_bytes",
                        json_integer((json_int_t)info->memory_bytes));
    json_object_set_new(obj, "running", json_boolean(info->running));
    json_object_set_new(limits, "timeout_s",
                        json_real(info->timeout_usec / 1e6));
    json_object_set_new(limits, "max_output_bytes",
                        json_integer(info->max_output));
    json_object_set_new(limits, "max_display_bytes",
                        json_integer(info->max_display));
    json_object_set_new(limits, "max_code_bytes",
                        json_integer(info->max_code));
    json_object_set_new(obj, "limits", limits);
    return obj;
}

char *pyexec_session_json(const pyexec_session_info_t *info)
{
    json_t *obj = session_object(info);
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)
                     : NULL;

    json_decref(obj);
    return text;
}

char *pyexec_session_list_json(const pyexec_session_info_t *infos, size_t n)
{
    json_t *obj = json_object(), *list = json_array();
    char *text = NULL;

    if (obj && list) {
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(list, session_object(&infos[i]));
        }
        json_object_set_new(obj, "sessions", list);
        list = NULL;
        text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(list);
    json_decref(obj);
    return text;
}
