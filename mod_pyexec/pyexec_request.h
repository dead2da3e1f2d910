/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The /execute JSON contract: parsing a request body and building the
 * answer. Kept free of httpd so that the fuzzers and unit tests drive
 * exactly the code the handler runs.
 */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <stddef.h>

#include "pyexec_id.h"

typedef struct {
    int status;             /* 0 when parsed; else the HTTP status */
    char error[200];        /* what is wrong, for the client */
    char *code;             /* malloc()ed, NUL terminated */
    size_t code_len;
    int has_id;
    pyexec_id_t id;
} pyexec_request_t;

/* Parse a request body. On failure status is 400 or 413 and error says
 * why; on success the caller frees req->code with
 * pyexec_request_clear(). */
int pyexec_request_parse(const char *body, size_t len, size_t max_code,
                         pyexec_request_t *req);
void pyexec_request_clear(pyexec_request_t *req);

/* 1 if buf is well-formed UTF-8 (no overlongs, no surrogates). */
int pyexec_utf8_valid(const char *buf, size_t len);

/* Build the compact JSON answer. Every argument but id may be NULL;
 * empty strings are left out as the contract says. Returns a malloc()ed
 * NUL terminated string (free()), or NULL when out of memory. */
char *pyexec_response_json(const char *id,
                           const char *out, size_t out_len,
                           const char *err, size_t err_len,
                           const char *error);

#endif /* PYEXEC_REQUEST_H */
