/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * libFuzzer target: the /execute request parser and the answer builder,
 * exactly as the handler calls them. Any crash, leak or sanitizer report
 * is a bug; so is an answer that is not valid JSON, or (for output that
 * is valid UTF-8) one that differs from what jansson writes. The same
 * bytes as a query go through the redaction of ids, which must leave
 * nothing shaped like an id and never lengthen the text. And the same
 * bytes arriving in pieces (their sizes taken from the bytes) must leave
 * the front's body prefix holding exactly their first bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pyexec_id.h"
#include "pyexec_request.h"

static void redact_query(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), *out = malloc(size + 1), *again;

    memcpy(in, data, size);
    in[size] = '\0';
    pyexec_id_redact(in, out);
    again = malloc(strlen(out) + 1);
    if (strlen(out) > strlen(in) || pyexec_id_redact(out, again) != 0) {
        abort();
    }
    free(again);
    free(out);
    free(in);
}

static void gather_prefix(const uint8_t *data, size_t size)
{
    pyexec_body_prefix_t b;
    size_t at = 0, limit = size ? data[0] * 7u + 1 : 1;

    pyexec_body_prefix_init(&b, limit, size > 1 ? data[1] * 13u : 0);
    while (at < size) {
        size_t n = 1 + data[at] % 97u;

        n = n < size - at ? n : size - at;
        if (pyexec_body_prefix_add(&b, (const char *)data + at, n) != 0) {
            abort();
        }
        at += n;
    }
    if (b.seen != size || b.len != (size < limit ? size : limit)
        || b.len > b.cap || b.cap > limit
        || (b.len && (memcmp(b.data, data, b.len) || b.data[b.len]))) {
        abort();
    }
    pyexec_body_prefix_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pyexec_request_t req;
    char *answer;
    json_t *back;

    redact_query(data, size);
    gather_prefix(data, size);
    if (pyexec_request_parse((const char *)data, size, 64 * 1024, &req) == 0) {
        /* a parsed request is what we said it is */
        if (strlen(req.code) != req.code_len) {
            abort();
        }
        pyexec_request_clear(&req);
    }
    else if (req.status != 400 && req.status != 413) {
        abort();
    }
    else if (!pyexec_utf8_valid(req.error, strlen(req.error))) {
        abort();
    }
    /* arbitrary bytes as program output must still make valid JSON */
    answer = pyexec_response_json("00000000-0000-4000-8000-000000000000",
                                  (const char *)data, size,
                                  (const char *)data, size / 2, NULL);
    if (!answer) {
        return 0;
    }
    /* output may hold NULs: valid JSON as \u0000 */
    back = json_loads(answer, JSON_ALLOW_NUL, NULL);
    if (!back) {
        abort();
    }
    json_decref(back);
    if (pyexec_utf8_valid((const char *)data, size)
        && pyexec_utf8_valid((const char *)data, size / 2)) {
        json_t *obj = json_object();
        char *want;

        json_object_set_new(obj, "id", json_string(
                                "00000000-0000-4000-8000-000000000000"));
        if (size) {
            json_object_set_new(obj, "stdout",
                                json_stringn((const char *)data, size));
        }
        if (size / 2) {
            json_object_set_new(obj, "stderr",
                                json_stringn((const char *)data, size / 2));
        }
        want = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!want || strcmp(want, answer) != 0) {
            abort();
        }
        free(want);
        json_decref(obj);
    }
    free(answer);
    return 0;
}
