/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * libFuzzer target: the /execute request parser and the answer builder,
 * exactly as the handler calls them. Any crash, leak or sanitizer report
 * is a bug; so is an answer that is not valid JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pyexec_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pyexec_request_t req;
    char *answer;
    json_t *back;

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
    free(answer);
    return 0;
}
