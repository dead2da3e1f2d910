/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

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
    json_t *root, *code, *id;
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
    id = json_object_get(root, "id");
    if (id) {
        if (!json_is_string(id)) {
            json_decref(root);
            return fail(req, 400, "'id' must be a string.");
        }
        if (pyexec_id_parse(json_string_value(id), json_string_length(id),
                            &req->id) != 0) {
            json_decref(root);
            return fail(req, 400, "'id' is not a session id: expected the "
                        "36 character UUID a previous answer returned.");
        }
        req->has_id = 1;
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
    json_decref(root);
    return 0;
}

void pyexec_request_clear(pyexec_request_t *req)
{
    free(req->code);
    req->code = NULL;
    req->code_len = 0;
}

/* Output from the helper is valid UTF-8 by construction; this repairs
 * it anyway rather than dropping it, should a peer ever break that. */
static json_t *text_value(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    char *fixed;
    size_t i, o = 0;

    if (v) {
        return v;
    }
    fixed = malloc(len * 3 + 1);
    if (!fixed) {
        return NULL;
    }
    for (i = 0; i < len;) {
        size_t n;

        for (n = 1; n <= 4 && i + n <= len; n++) {
            if (pyexec_utf8_valid(s + i, n)) {
                break;
            }
        }
        if (n <= 4 && i + n <= len) {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        }
        else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);   /* U+FFFD */
            o += 3;
            i++;
        }
    }
    v = json_stringn(fixed, o);
    free(fixed);
    return v;
}

char *pyexec_response_json(const char *id,
                           const char *out, size_t out_len,
                           const char *err, size_t err_len,
                           const char *error)
{
    json_t *obj = json_object();
    char *text;

    if (!obj) {
        return NULL;
    }
    if (id) {
        json_object_set_new(obj, "id", json_string(id));
    }
    if (out && out_len) {
        json_object_set_new(obj, "stdout", text_value(out, out_len));
    }
    if (err && err_len) {
        json_object_set_new(obj, "stderr", text_value(err, err_len));
    }
    if (error) {
        json_object_set_new(obj, "error", text_value(error, strlen(error)));
    }
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return text;
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
