/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pyexec_protocol.h"
#include "pyexec_request.h"
#include "test_suites.h"

#define MAX_CODE 65536
#define SAMPLE_ID "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7"

static int parse(const char *body, size_t max_code, pyexec_request_t *req)
{
    return pyexec_request_parse(body, strlen(body), max_code, req);
}

/* A refused body: the status, a message for the client that mentions
 * `about` (when given), and nothing left for the caller to free. */
static void expect_reject(const char *body, size_t len, size_t max_code,
                          int status, const char *about)
{
    pyexec_request_t req;

    ck_assert_msg(pyexec_request_parse(body, len, max_code, &req) == -1,
                  "accepted %s", body);
    ck_assert_msg(req.status == status, "%s: status %d, want %d", body,
                  req.status, status);
    ck_assert_msg(req.error[0] != '\0', "%s: no error message", body);
    ck_assert_uint_lt(strlen(req.error), sizeof(req.error));
    if (about) {
        ck_assert_msg(strstr(req.error, about) != NULL,
                      "%s: error \"%s\" does not mention %s", body,
                      req.error, about);
    }
    ck_assert_ptr_null(req.code);
    pyexec_request_clear(&req);
}

static void reject(const char *body, int status, const char *about)
{
    expect_reject(body, strlen(body), MAX_CODE, status, about);
}

/* --- parse: accepted ------------------------------------------------- */

START_TEST(test_parse_code_only)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"code\": \"print(1)\"}", MAX_CODE, &req), 0);
    ck_assert_int_eq(req.status, 0);
    ck_assert_str_eq(req.code, "print(1)");
    ck_assert_uint_eq(req.code_len, 8);
    ck_assert_int_eq(req.has_id, 0);
    pyexec_request_clear(&req);
    ck_assert_ptr_null(req.code);
    ck_assert_uint_eq(req.code_len, 0);
}
END_TEST

START_TEST(test_parse_display_result)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"code\": \"1\"}", MAX_CODE, &req), 0);
    ck_assert_int_eq(req.display_result, 0);
    pyexec_request_clear(&req);
    ck_assert_int_eq(parse("{\"code\": \"1\", \"display_result\": true}",
                           MAX_CODE, &req), 0);
    ck_assert_int_eq(req.display_result, 1);
    pyexec_request_clear(&req);
    ck_assert_int_eq(parse("{\"display_result\": false, \"code\": \"1\"}",
                           MAX_CODE, &req), 0);
    ck_assert_int_eq(req.display_result, 0);
    pyexec_request_clear(&req);
    reject("{\"code\": \"1\", \"display_result\": 1}", 400,
           "display_result");
    reject("{\"code\": \"1\", \"display_result\": \"true\"}", 400,
           "display_result");
}
END_TEST

/* stdin: a string, NULs and all, counted with the code against the
 * limit */
START_TEST(test_parse_stdin)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"code\": \"1\"}", MAX_CODE, &req), 0);
    ck_assert_ptr_null(req.stdin_text);
    ck_assert_uint_eq(req.stdin_len, 0);
    pyexec_request_clear(&req);
    ck_assert_int_eq(parse("{\"code\": \"input()\", \"stdin\": "
                           "\"a\\u0000b\\n\\u00e9\"}", MAX_CODE, &req), 0);
    ck_assert_uint_eq(req.stdin_len, 6);
    ck_assert_mem_eq(req.stdin_text, "a\0b\n\xc3\xa9", 6);
    pyexec_request_clear(&req);
    ck_assert_ptr_null(req.stdin_text);
    reject("{\"code\": \"1\", \"stdin\": 1}", 400, "stdin");
    reject("{\"code\": \"1\", \"stdin\": null}", 400, "stdin");
    /* 7 of code and 9 of stdin against a limit of 16: in; 17: out */
    ck_assert_int_eq(parse("{\"code\": \"print()\", \"stdin\": "
                           "\"123456789\"}", 16, &req), 0);
    pyexec_request_clear(&req);
    ck_assert_int_eq(parse("{\"code\": \"print()\", \"stdin\": "
                           "\"1234567890\"}", 16, &req), -1);
    ck_assert_int_eq(req.status, 413);
    ck_assert_ptr_nonnull(strstr(req.error, "'stdin'"));
}
END_TEST

/* An id with a route (PyExecRoute): the route comes apart from it */
START_TEST(test_parse_routed_id)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"id\": \"" SAMPLE_ID ".h2\", \"code\": \"\"}",
                           MAX_CODE, &req), 0);
    ck_assert_int_eq(req.has_id, 1);
    ck_assert_str_eq(req.route, "h2");
    pyexec_request_clear(&req);
    ck_assert_int_eq(parse("{\"id\": \"" SAMPLE_ID "\", \"code\": \"\"}",
                           MAX_CODE, &req), 0);
    ck_assert_str_eq(req.route, "");
    pyexec_request_clear(&req);
    reject("{\"id\": \"" SAMPLE_ID ".h;2\", \"code\": \"\"}", 400, "'id'");
    reject("{\"id\": \"" SAMPLE_ID ".\", \"code\": \"\"}", 400, "'id'");
}
END_TEST

START_TEST(test_json_media_type)
{
    ck_assert(pyexec_json_media_type("application/json"));
    ck_assert(pyexec_json_media_type(" Application/JSON ; charset=utf-8"));
    ck_assert(pyexec_json_media_type("application/problem+json"));
    ck_assert(!pyexec_json_media_type("text/json"));
    ck_assert(!pyexec_json_media_type("application/jsonx"));
    ck_assert(!pyexec_json_media_type("application/+json"));
    ck_assert(!pyexec_json_media_type(NULL));
}
END_TEST

START_TEST(test_parse_with_id)
{
    static const uint8_t want[PYEXEC_ID_BYTES] = {
        0x01, 0x23, 0xab, 0xcd, 0xef, 0x45, 0x47, 0x89,
        0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0xa6, 0xb7
    };
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"id\": \"" SAMPLE_ID "\", \"code\": \"x = 1\"}",
                           MAX_CODE, &req), 0);
    ck_assert_int_eq(req.has_id, 1);
    ck_assert_mem_eq(req.id.b, want, PYEXEC_ID_BYTES);
    ck_assert_str_eq(req.code, "x = 1");
    pyexec_request_clear(&req);

    /* a client may well upper-case the id; it is still the same one */
    ck_assert_int_eq(parse("{\"code\": \"\", "
                           "\"id\": \"0123ABCD-EF45-4789-A0B1-C2D3E4F5A6B7\"}",
                           MAX_CODE, &req), 0);
    ck_assert_int_eq(req.has_id, 1);
    ck_assert_mem_eq(req.id.b, want, PYEXEC_ID_BYTES);
    pyexec_request_clear(&req);
}
END_TEST

/* The caller's struct may hold anything from a previous request. */
START_TEST(test_parse_resets_request)
{
    pyexec_request_t req;

    memset(&req, 0x5a, sizeof(req));
    req.has_id = 1;
    ck_assert_int_eq(parse("{\"code\": \"pass\"}", MAX_CODE, &req), 0);
    ck_assert_int_eq(req.has_id, 0);
    ck_assert_int_eq(req.status, 0);
    pyexec_request_clear(&req);
}
END_TEST

/* JSON escapes are decoded: the code is what the client meant, not
 * what it had to write. */
START_TEST(test_parse_escapes)
{
    pyexec_request_t req;
    const char *want = "a\n\"b\"\\\t\xc3\xa9\xf0\x9f\x98\x80/";

    ck_assert_int_eq(parse("{\"code\": \"a\\n\\\"b\\\"\\\\\\t\\u00e9"
                           "\\ud83d\\ude00\\/\"}", MAX_CODE, &req), 0);
    ck_assert_str_eq(req.code, want);
    ck_assert_uint_eq(req.code_len, strlen(want));
    pyexec_request_clear(&req);
}
END_TEST

START_TEST(test_parse_raw_utf8)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"code\": "
                           "\"print('h\xc3\xa9llo \xe2\x82\xac')\"}",
                           MAX_CODE, &req), 0);
    ck_assert_str_eq(req.code, "print('h\xc3\xa9llo \xe2\x82\xac')");
    pyexec_request_clear(&req);
}
END_TEST

/* Only the given length is the body; what follows in memory is not. */
START_TEST(test_parse_uses_len)
{
    const char *buf = "{\"code\": \"ok\"}GARBAGE";
    pyexec_request_t req;

    ck_assert_int_eq(pyexec_request_parse(buf, 14, MAX_CODE, &req), 0);
    ck_assert_str_eq(req.code, "ok");
    pyexec_request_clear(&req);
    expect_reject(buf, strlen(buf), MAX_CODE, 400, "Invalid JSON");
}
END_TEST

/* --- parse: size limit ----------------------------------------------- */

/* The limit itself is allowed. */
START_TEST(test_parse_code_limit)
{
    pyexec_request_t req;

    ck_assert_int_eq(parse("{\"code\": \"12345678\"}", 8, &req), 0);
    ck_assert_uint_eq(req.code_len, 8);
    pyexec_request_clear(&req);
}
END_TEST

START_TEST(test_parse_code_too_large)
{
    const char *body = "{\"code\": \"123456789\"}";

    expect_reject(body, strlen(body), 8, 413, "8");
}
END_TEST

/* The limit is in bytes of the decoded code: multi-byte characters
 * count in full, escapes count as what they stand for. */
START_TEST(test_parse_code_limit_bytes)
{
    const char *body = "{\"code\": "
                       "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}";
    pyexec_request_t req;

    expect_reject(body, strlen(body), 9, 413, "10");
    ck_assert_int_eq(parse(body, 10, &req), 0);
    pyexec_request_clear(&req);

    ck_assert_int_eq(parse("{\"code\": \"\\u0041\\u0042\"}", 2, &req), 0);
    ck_assert_str_eq(req.code, "AB");
    pyexec_request_clear(&req);
}
END_TEST

/* --- parse: refused -------------------------------------------------- */

START_TEST(test_parse_empty)
{
    expect_reject("", 0, MAX_CODE, 400, "empty");
    expect_reject("{\"code\": \"x\"}", 0, MAX_CODE, 400, "empty");
}
END_TEST

START_TEST(test_parse_invalid_utf8)
{
    static const char *const bodies[] = {
        "{\"code\": \"\xff\"}",
        "{\"code\": \"\xc0\xaf\"}",             /* overlong '/' */
        "{\"code\": \"\xed\xa0\x80\"}",         /* surrogate */
        "{\"code\": \"\xf4\x90\x80\x80\"}",     /* above U+10FFFF */
        "{\"code\": \"x\"}\xe2\x82",            /* truncated at the end */
        "{\"co\x80\x64\x65\": \"x\"}",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, "UTF-8");
    }
}
END_TEST

START_TEST(test_parse_invalid_json)
{
    static const char *const bodies[] = {
        "{\"code\": ",
        "{\"code\": \"x\"",
        "{\"code\": \"x\",}",
        "{'code': 'x'}",
        "{code: \"x\"}",
        "{\"code\": \"x\"} {}",
        "{\"code\": \"x\"} trailing",
        "{\"code\": \"a\nb\"}",                 /* raw control character */
        "{\"code\": \"\\x41\"}",
        "{\"code\": \"\\ud800\"}",              /* lone surrogate escape */
        "{\"code\": \"\\udc00\\ud800\"}",
        "   ",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, "Invalid JSON");
    }
}
END_TEST

/* A raw NUL byte is valid UTF-8 but never valid JSON text. */
START_TEST(test_parse_raw_nul)
{
    static const char body[] = "{\"code\": \"a\0b\"}";

    expect_reject(body, sizeof(body) - 1, MAX_CODE, 400, NULL);
}
END_TEST

START_TEST(test_parse_not_object)
{
    static const char *const bodies[] = {
        "[]", "[{\"code\": \"x\"}]", "\"code\"", "42", "null", "true",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, NULL);
    }
    reject("[{\"code\": \"x\"}]", 400, "object");
}
END_TEST

START_TEST(test_parse_missing_code)
{
    reject("{}", 400, "code");
    reject("{\"Code\": \"x\"}", 400, "code");
    reject("{\"id\": \"" SAMPLE_ID "\"}", 400, "code");
    reject("{\"source\": \"print(1)\"}", 400, "code");
}
END_TEST

START_TEST(test_parse_code_not_string)
{
    static const char *const bodies[] = {
        "{\"code\": 1}", "{\"code\": null}", "{\"code\": true}",
        "{\"code\": [\"print(1)\"]}", "{\"code\": {\"a\": \"b\"}}",
        "{\"code\": 1.5}",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, "'code' must be a string");
    }
}
END_TEST

/* null is not "no id": a client sending it expects some session and
 * must be told, not handed a fresh one. */
START_TEST(test_parse_id_not_string)
{
    static const char *const bodies[] = {
        "{\"code\": \"x\", \"id\": null}",
        "{\"code\": \"x\", \"id\": 1}",
        "{\"code\": \"x\", \"id\": true}",
        "{\"code\": \"x\", \"id\": [\"" SAMPLE_ID "\"]}",
        "{\"code\": \"x\", \"id\": {}}",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, "'id' must be a string");
    }
}
END_TEST

START_TEST(test_parse_id_bad_shape)
{
    static const char *const bodies[] = {
        "{\"code\": \"x\", \"id\": \"\"}",
        "{\"code\": \"x\", \"id\": \"abc\"}",
        "{\"code\": \"x\", \"id\": \"0123abcd-ef45-4789-a0b1-c2d3e4f5a6b\"}",
        "{\"code\": \"x\", \"id\": \"0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7a\"}",
        "{\"code\": \"x\", \"id\": \"{0123abcd-ef45-4789-a0b1-c2d3e4f5a6b}\"}",
        "{\"code\": \"x\", \"id\": \"0123abcdef454789a0b1c2d3e4f5a6b7\"}",
        "{\"code\": \"x\", \"id\": \"0123abcg-ef45-4789-a0b1-c2d3e4f5a6b7\"}",
        "{\"code\": \"x\", \"id\": \" 123abcd-ef45-4789-a0b1-c2d3e4f5a6b7\"}",
        /* 36 characters once decoded, but one of them is a NUL */
        "{\"code\": \"x\", "
        "\"id\": \"0123abcd-ef45-4789-a0b1-c2d3e4f5a6\\u0000b\"}",
    };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        reject(bodies[i], 400, "'id'");
    }
}
END_TEST

/* Which of two values counts is anybody's guess across parsers, so a
 * body with both is refused. */
START_TEST(test_parse_duplicate_keys)
{
    reject("{\"code\": \"a\", \"code\": \"b\"}", 400, NULL);
    reject("{\"code\": \"a\", \"id\": \"" SAMPLE_ID "\", "
           "\"id\": \"" SAMPLE_ID "\"}", 400, NULL);
    reject("{\"x\": 1, \"code\": \"a\", \"x\": 2}", 400, NULL);
}
END_TEST

/* The interpreter takes C strings: a NUL would silently cut the code. */
START_TEST(test_parse_nul_in_code)
{
    reject("{\"code\": \"a\\u0000b\"}", 400, "NUL");
    reject("{\"code\": \"\\u0000\"}", 400, "NUL");
    reject("{\"code\": \"print(1)\\u0000\"}", 400, "NUL");
}
END_TEST

/* --- UTF-8 validation ------------------------------------------------ */

static int valid(const char *s)
{
    return pyexec_utf8_valid(s, strlen(s));
}

START_TEST(test_utf8_valid)
{
    static const char *const good[] = {
        "", "plain ascii \x7f",
        "\xc2\x80", "\xdf\xbf",                         /* 2 byte ends */
        "\xe0\xa0\x80", "\xef\xbf\xbf",                 /* 3 byte ends */
        "\xed\x9f\xbf", "\xee\x80\x80",                 /* around surrogates */
        "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",         /* 4 byte ends */
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80!",
    };
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(valid(good[i]), "rejected good[%zu]", i);
    }
    /* NUL is a character like any other; the length decides the end */
    ck_assert(pyexec_utf8_valid("a\0b", 3));
}
END_TEST

START_TEST(test_utf8_invalid)
{
    static const char *const bad[] = {
        "\x80", "\xbf", "a\x80z",                       /* stray tails */
        "\xc0\x80", "\xc1\xbf",                         /* overlong 2 */
        "\xe0\x80\x80", "\xe0\x9f\xbf",                 /* overlong 3 */
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",         /* overlong 4 */
        "\xed\xa0\x80", "\xed\xbf\xbf",                 /* surrogates */
        "\xed\xa0\xbd\xed\xb8\x80",                     /* CESU-8 pair */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",         /* > U+10FFFF */
        "\xf7\xbf\xbf\xbf", "\xf8\x88\x80\x80\x80",
        "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff",
        "\xc3", "\xe2\x82", "\xf0\x9f\x98",             /* truncated */
        "abc\xc3", "abc\xf0\x9f\x98",
        "\xe2\x82z", "\xc3(", "\xf0\x9f(\x80",          /* cut short */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!valid(bad[i]), "accepted bad[%zu]", i);
    }
    /* a length that ends inside a character */
    ck_assert(!pyexec_utf8_valid("\xc3\xa9", 1));
    ck_assert(!pyexec_utf8_valid("\xe2\x82\xac", 2));
    ck_assert(!pyexec_utf8_valid("\xf0\x9f\x98\x80", 3));
}
END_TEST

/* Every sequence of up to three bytes, and a sweep of four byte ones,
 * judged against Jansson's own validator, which the parser relies on
 * downstream anyway. */
START_TEST(test_utf8_matches_jansson)
{
    unsigned char b[4];
    unsigned int x, y;
    unsigned int bad = 0;

    for (x = 0; x < 0x10000; x++) {
        b[0] = (unsigned char)(x >> 8);
        b[1] = (unsigned char)x;
        for (y = 1; y <= 2; y++) {
            json_t *j = json_stringn((const char *)b, y);
            int ours = pyexec_utf8_valid((const char *)b, y);

            bad += ours != (j != NULL);
            json_decref(j);
        }
    }
    ck_assert_uint_eq(bad, 0);

    for (x = 0xe0; x <= 0xf4; x++) {
        for (y = 0; y < 0x10000; y++) {
            json_t *j;
            int ours;

            b[0] = (unsigned char)x;
            b[1] = (unsigned char)(y >> 8);
            b[2] = (unsigned char)y;
            /* mostly continuation bytes, sometimes not */
            b[3] = (unsigned char)(y * 37 + x);
            j = json_stringn((const char *)b, x >= 0xf0 ? 4 : 3);
            ours = pyexec_utf8_valid((const char *)b, x >= 0xf0 ? 4 : 3);
            ck_assert_msg(ours == (j != NULL),
                          "%02x %02x %02x %02x: ours %d, jansson %d",
                          b[0], b[1], b[2], b[3], ours, j != NULL);
            json_decref(j);
        }
    }
}
END_TEST

/* --- response -------------------------------------------------------- */

static void expect_json(char *got, const char *want)
{
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

/* Clients see the keys in this order; tests and docs rely on it. */
START_TEST(test_response_all_fields)
{
    expect_json(pyexec_response_json(SAMPLE_ID, "out\n", 4, "err\n", 4,
                                     "Execution timeout."),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":\"out\\n\","
                "\"stderr\":\"err\\n\",\"error\":\"Execution timeout.\"}");
}
END_TEST

START_TEST(test_response_omits_empty)
{
    expect_json(pyexec_response_json(SAMPLE_ID, "", 0, "", 0, NULL),
                "{\"id\":\"" SAMPLE_ID "\"}");
    expect_json(pyexec_response_json(SAMPLE_ID, NULL, 0, NULL, 0, NULL),
                "{\"id\":\"" SAMPLE_ID "\"}");
    expect_json(pyexec_response_json(SAMPLE_ID, "", 0, "boom", 4, NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stderr\":\"boom\"}");
    expect_json(pyexec_response_json(SAMPLE_ID, "1\n", 2, NULL, 0, NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":\"1\\n\"}");
    /* a length of zero means empty, whatever the pointer holds */
    expect_json(pyexec_response_json(SAMPLE_ID, "junk", 0, "junk", 0, NULL),
                "{\"id\":\"" SAMPLE_ID "\"}");
}
END_TEST

START_TEST(test_response_no_id)
{
    expect_json(pyexec_response_json(NULL, NULL, 0, NULL, 0, "Bad request."),
                "{\"error\":\"Bad request.\"}");
    expect_json(pyexec_response_json(NULL, NULL, 0, NULL, 0, NULL), "{}");
}
END_TEST

/* The length is the output, so NULs and bytes past it are handled as
 * the helper sent them. */
START_TEST(test_response_lengths)
{
    char *text;
    json_t *root;
    json_error_t jerr;

    expect_json(pyexec_response_json(SAMPLE_ID, "hello world", 5, NULL, 0,
                                     NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":\"hello\"}");

    text = pyexec_response_json(SAMPLE_ID, "a\0b", 3, NULL, 0, NULL);
    ck_assert_ptr_nonnull(text);
    root = json_loads(text, JSON_ALLOW_NUL, &jerr);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(json_string_length(json_object_get(root, "stdout")), 3);
    ck_assert_mem_eq(json_string_value(json_object_get(root, "stdout")),
                     "a\0b", 3);
    json_decref(root);
    free(text);
}
END_TEST

/* Whatever the program printed must come back as valid JSON that
 * decodes to exactly those bytes. */
START_TEST(test_response_escaping)
{
    const char *out = "quote \" backslash \\ tab \t bell \x07 "
                      "</script> \xe2\x80\xa8 \xf0\x9f\x98\x80";
    char *text = pyexec_response_json(SAMPLE_ID, out, strlen(out), "\r\n", 2,
                                      "say \"no\"");
    json_t *root;
    json_error_t jerr;

    ck_assert_ptr_nonnull(text);
    root = json_loads(text, 0, &jerr);
    ck_assert_msg(root != NULL, "invalid JSON: %s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(root, "stdout")), out);
    ck_assert_str_eq(json_string_value(json_object_get(root, "stderr")),
                     "\r\n");
    ck_assert_str_eq(json_string_value(json_object_get(root, "error")),
                     "say \"no\"");
    json_decref(root);
    free(text);
}
END_TEST

/* Invalid bytes become U+FFFD; the valid text around them stays. */
START_TEST(test_response_repairs_utf8)
{
    expect_json(pyexec_response_json(SAMPLE_ID, "a\xff" "b", 3, NULL, 0,
                                     NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":\"a\xef\xbf\xbd" "b\"}");
    expect_json(pyexec_response_json(SAMPLE_ID, NULL, 0, "ok\xc3", 3, NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stderr\":\"ok\xef\xbf\xbd\"}");
    expect_json(pyexec_response_json(SAMPLE_ID,
                                     "\xc3\xa9\xfe\xe2\x82\xac", 6, NULL, 0,
                                     NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":"
                "\"\xc3\xa9\xef\xbf\xbd\xe2\x82\xac\"}");
    expect_json(pyexec_response_json(SAMPLE_ID, "\x80\x80", 2, NULL, 0, NULL),
                "{\"id\":\"" SAMPLE_ID "\",\"stdout\":"
                "\"\xef\xbf\xbd\xef\xbf\xbd\"}");
}
END_TEST

/* Sequences that look like characters but are not must be repaired as
 * well, without losing what follows them. */
/* The answer is written without jansson, so that it is never held whole:
 * it must be the very bytes json_dumps would have written. Random
 * strings of every kind of character a program prints. */
START_TEST(test_answer_matches_jansson)
{
    static const char *const pieces[] = {
        "a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f",
        "\x01", "\x1f", "\x7f", "\xc2\xa0", "\xe2\x80\xa8", "\xef\xbf\xbd",
        "\xf0\x9f\x98\x80", "</script>", "\\u0041",
    };
    static char out[4096], err[512];
    uint32_t seed = 12345;

    for (int round = 0; round < 300; round++) {
        size_t on = 0, en = 0;
        json_t *obj = json_object();
        char *want, *got;

        for (int k = (int)(seed % 200); k > 0; k--) {
            const char *p;

            seed = seed * 1103515245u + 12345u;
            p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(out + on, p, strlen(p));
            on += strlen(p);
            if (k % 7 == 0) {
                out[on++] = '\0';       /* NULs print too */
            }
            if (k % 5 == 0 && en < sizeof(err) - 16) {
                memcpy(err + en, p, strlen(p));
                en += strlen(p);
            }
        }
        json_object_set_new(obj, "id", json_string(SAMPLE_ID));
        if (on) {
            json_object_set_new(obj, "stdout", json_stringn(out, on));
        }
        if (en) {
            json_object_set_new(obj, "stderr", json_stringn(err, en));
        }
        want = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        got = pyexec_response_json(SAMPLE_ID, out, on, err, en, NULL);
        ck_assert_ptr_nonnull(want);
        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, want);
        free(want);
        free(got);
        json_decref(obj);
    }
}
END_TEST

typedef struct {
    char *buf;
    size_t len, pieces, largest;
    int fail_at;                /* piece number that fails; 0: none */
} collect_t;

static int collect(void *ctx, const char *piece, size_t len)
{
    collect_t *c = ctx;

    c->pieces++;
    if (c->fail_at && (int)c->pieces == c->fail_at) {
        return 7;
    }
    memcpy(c->buf + c->len, piece, len);
    c->len += len;
    if (len > c->largest) {
        c->largest = len;
    }
    return 0;
}

/* 1 MiB of a control character is 6 MiB of JSON: it goes out in pieces
 * of at most PYEXEC_ANSWER_CHUNK, adding up to the announced length, and
 * a failing sink stops it. */
START_TEST(test_answer_in_pieces)
{
    size_t n = 1024 * 1024;
    char *out = malloc(n);
    pyexec_answer_t a = { SAMPLE_ID, NULL, 0, "boom\n", 5, NULL, NULL, 0 };
    collect_t c = { NULL, 0, 0, 0, 0 };
    char *whole;
    size_t len;

    ck_assert_ptr_nonnull(out);
    memset(out, 1, n);
    a.out = out;
    a.out_len = n;
    len = pyexec_answer_len(&a);
    ck_assert_uint_eq(len, strlen("{\"id\":\"" SAMPLE_ID "\",\"stdout\":\"\""
                                  ",\"stderr\":\"boom\\n\"}") + 6 * n);
    c.buf = malloc(len);
    ck_assert_ptr_nonnull(c.buf);
    ck_assert_int_eq(pyexec_answer_write(&a, collect, &c), 0);
    ck_assert_uint_eq(c.len, len);
    ck_assert_uint_le(c.largest, PYEXEC_ANSWER_CHUNK);
    ck_assert_uint_ge(c.pieces, len / PYEXEC_ANSWER_CHUNK);
    whole = pyexec_response_json(SAMPLE_ID, out, n, "boom\n", 5, NULL);
    ck_assert_ptr_nonnull(whole);
    ck_assert(memcmp(whole, c.buf, len) == 0);
    free(c.buf);

    memset(&c, 0, sizeof(c));
    c.buf = whole;              /* any buffer big enough */
    c.fail_at = 3;
    ck_assert_int_eq(pyexec_answer_write(&a, collect, &c), 7);
    ck_assert_uint_eq(c.pieces, 3);
    free(whole);
    free(out);
}
END_TEST

/* --- display items in the answer ------------------------------------- */

static size_t add_item(unsigned char *sec, size_t at, uint32_t off,
                       const char *json)
{
    pyexec_display_item_encode(sec + at, off, (uint32_t)strlen(json));
    memcpy(sec + at + PYEXEC_DISPLAY_ITEM_HDR_LEN, json, strlen(json));
    return at + PYEXEC_DISPLAY_ITEM_HDR_LEN + strlen(json);
}

static int check_one(uint32_t off, const char *json, const char *out)
{
    unsigned char *sec = malloc(PYEXEC_DISPLAY_ITEM_HDR_LEN + strlen(json));
    size_t len;
    const char *why = NULL;
    int rc;

    ck_assert_ptr_nonnull(sec);
    len = add_item(sec, 0, off, json);
    rc = pyexec_answer_display_check(sec, len, 1, out, strlen(out), &why);
    free(sec);
    ck_assert(rc == 0 || why != NULL);
    return rc;
}

/* The answer carries display items as the helper wrote them, once their
 * shape is checked, with their offset added: valid JSON, in order. */
START_TEST(test_answer_with_display)
{
    unsigned char sec[512];
    size_t len = 0;
    const char *why = NULL;
    pyexec_answer_t a = { SAMPLE_ID, "h\xc3\xa9llo\n", 7, NULL, 0, NULL,
                          NULL, 0 };
    char *text;
    size_t n;
    json_t *root, *items;

    len = add_item(sec, len, 2, "{\"data\":{\"text/plain\":\"1\"},"
                   "\"metadata\":{}}");
    len = add_item(sec, len, 6, " {\"data\":{\"image/png\":\"AAAA\","
                   "\"application/json\":[1,{\"a\":null}]},"
                   "\"metadata\":{\"image/png\":{\"width\":1}}}  ");
    ck_assert_int_eq(pyexec_answer_display_check(sec, len, 2, a.out,
                                                 a.out_len, &why), 0);
    a.display = sec;
    a.display_len = len;
    n = pyexec_answer_len(&a);
    text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    {
        collect_t c = { text, 0, 0, 0, 0 };

        ck_assert_int_eq(pyexec_answer_write(&a, collect, &c), 0);
        ck_assert_uint_eq(c.len, n);
    }
    text[n] = '\0';
    root = json_loads(text, 0, NULL);
    ck_assert_msg(root != NULL, "invalid JSON: %s", text);
    items = json_object_get(root, "display");
    ck_assert_uint_eq(json_array_size(items), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(
        json_array_get(items, 0), "stdout_offset")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(
        json_array_get(items, 1), "stdout_offset")), 6);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
        json_array_get(items, 1), "data"), "image/png")), "AAAA");
    /* after stderr's place, before error's */
    ck_assert_ptr_nonnull(strstr(text, "\"stdout\":\"h\xc3\xa9llo\\n\","
                                 "\"display\":[{"));
    json_decref(root);
    free(text);
}
END_TEST

/* What no honest helper sends is refused, whatever it says. */
START_TEST(test_display_check_refuses)
{
    static const char *const bad_values[] = {
        "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "tru", "nul",
        "[1 2]", "{\"a\" 1}", "{1:2}", "[", "]", "\"open",
    };
    static const char *const bad[] = {
        "{\"data\":{\"text/plain\":\"x\"}}",              /* no metadata */
        "{\"data\":{},\"metadata\":{}}",                    /* no data */
        "{\"data\":{\"text/plain\":1},\"metadata\":{}}",    /* not text */
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":[]}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{},"
        "\"stdout_offset\":1}",                              /* ours to add */
        "{\"data\":{\"text/plain\":\"x\"},\"data\":{},\"metadata\":{}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}} x",
        "{\"data\":{\"text/plain\":\"\xff\"},\"metadata\":{}}",
        "[1]", "", "{}", "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{},}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":7}",
        "{\"data\":{\"text/plain\":\"x\",},\"metadata\":{}}",
        "{\"data\":{\"text/plain\":\"\\x\"},\"metadata\":{}}",
        "{\"data\":{\"text/plain\":\"\x01\"},\"metadata\":{}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{\"a\":}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{\"a\":1 2}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{\"a\":[1,]}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{\"a\":\"\\u12\"}}",
        /* a line break would end an event of a stream early */
        "{\"data\":{\"text/plain\":\"x\"},\n\"metadata\":{}}",
        "{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}}\r",
    };
    static const char ok[] = "{\"data\":{\"text/plain\":\"x\"},"
                             "\"metadata\":{}}";
    unsigned char sec[512];
    size_t len;
    const char *why = NULL;

    ck_assert_int_eq(check_one(0, ok, ""), 0);
    ck_assert_int_eq(check_one(3, ok, "abc"), 0);
    /* offsets count code points: "\xc3\xa9" is one */
    ck_assert_int_eq(check_one(2, ok, "\xc3\xa9z"), 0);
    ck_assert_int_ne(check_one(3, ok, "\xc3\xa9z"), 0);
    ck_assert_int_ne(check_one(4, ok, "abc"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_one(0, bad[i], "") != 0, "accepted %s", bad[i]);
    }
    /* a JSON type's value may be any JSON; metadata too: numbers of any
     * size, NULs in keys, repeated keys, as Python's json writes them */
    ck_assert_int_eq(check_one(0, "{\"data\":{\"text/x+json\":1},"
                               "\"metadata\":{}}", ""), 0);
    ck_assert_int_eq(check_one(0, "{\"metadata\":{\"x\":"
                               "1000000000000000000000000000000,\"\\u0000\":"
                               "-1.5e-300,\"1\":\"a\",\"1\":[true,false,null]},"
                               "\"data\":{\"application/json\":{\"a\":[{}]},"
                               "\"text/plain\":\"\\ud83d\\ude00\"}}", ""), 0);
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        char item[160];

        snprintf(item, sizeof(item), "{\"data\":{\"application/json\":%s},"
                 "\"metadata\":{}}", bad_values[i]);
        ck_assert_msg(check_one(0, item, "") != 0, "accepted %s", item);
    }
    /* nesting: deep is fine, past the stack refused, never a crash */
    {
        static char deep[2 * 5000 + 64];
        size_t n = 0;

        for (int depth = 4000; depth <= 5000; depth += 1000) {
            n = (size_t)snprintf(deep, sizeof(deep),
                                 "{\"data\":{\"application/json\":");
            memset(deep + n, '[', (size_t)depth);
            n += (size_t)depth;
            memset(deep + n, ']', (size_t)depth);
            n += (size_t)depth;
            strcpy(deep + n, "},\"metadata\":{}}");
            ck_assert_int_eq(check_one(0, deep, "") == 0, depth == 4000);
        }
    }
    /* NULs are text a program may print */
    ck_assert_int_eq(check_one(0, "{\"data\":{\"text/plain\":\"\\u0000\"},"
                               "\"metadata\":{}}", ""), 0);
    /* offsets out of order; a count that does not match */
    len = add_item(sec, 0, 2, ok);
    len = add_item(sec, len, 1, ok);
    ck_assert_int_ne(pyexec_answer_display_check(sec, len, 2, "abc", 3, &why),
                     0);
    len = add_item(sec, 0, 1, ok);
    ck_assert_int_ne(pyexec_answer_display_check(sec, len, 2, "abc", 3, &why),
                     0);
    ck_assert_int_ne(pyexec_answer_display_check(sec, len, 0, "abc", 3, &why),
                     0);
    ck_assert_int_ne(pyexec_answer_display_check(sec, len - 1, 1, "abc", 3,
                                                 &why), 0);
}
END_TEST

/* The events of a streamed run: each "event:", one "data:" line of
 * JSON, a blank line; text escaped so that no line break ends it early. */
START_TEST(test_events)
{
    static char buf[4096];
    collect_t c = { buf, 0, 0, 0, 0 };
    static const unsigned char item[] =
        "{\"data\":{\"text/plain\":\"7\"},\"metadata\":{}}";
    pyexec_answer_t a = { SAMPLE_ID, "a\n", 2, NULL, 0, NULL, NULL, 0 };
    char *whole, want[512];

    ck_assert_int_eq(pyexec_event_text("stdout", "one\ntwo\r\x01\"", 10,
                                       collect, &c), 0);
    buf[c.len] = '\0';
    ck_assert_str_eq(buf, "event: stdout\ndata: {\"text\":"
                          "\"one\\ntwo\\r\\u0001\\\"\"}\n\n");
    c.len = 0;
    ck_assert_int_eq(pyexec_event_display(item, sizeof(item) - 1, 3, collect,
                                          &c), 0);
    buf[c.len] = '\0';
    ck_assert_str_eq(buf, "event: display\ndata: {\"data\":{\"text/plain\":"
                          "\"7\"},\"metadata\":{},\"stdout_offset\":3}\n\n");
    c.len = 0;
    ck_assert_int_eq(pyexec_event_answer(&a, collect, &c), 0);
    buf[c.len] = '\0';
    whole = pyexec_response_json(SAMPLE_ID, "a\n", 2, NULL, 0, NULL);
    ck_assert_ptr_nonnull(whole);
    /* the answer as a plain request would have it, as the event's data */
    snprintf(want, sizeof(want), "event: result\ndata: %s\n\n", whole);
    ck_assert_str_eq(buf, want);
    free(whole);
    /* a failing sink stops it */
    c.len = 0;
    c.pieces = 0;
    c.fail_at = 1;
    ck_assert_int_ne(pyexec_event_text("stderr", "x", 1, collect, &c), 0);
}
END_TEST

START_TEST(test_response_repairs_sequences)
{
    static const struct {
        const char *in;
        const char *keep;       /* must survive, after the repair */
    } cases[] = {
        { "x\xed\xa0\x80y", "y" },              /* surrogate */
        { "x\xc0\xafy", "y" },                  /* overlong */
        { "x\xf4\x90\x80\x80y", "y" },          /* above U+10FFFF */
        { "x\xe2\x82y\xe2\x82\xac", "y\xe2\x82\xac" },
        { "x\xf0\x9f\x98", "x" },               /* cut at the end */
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = pyexec_response_json(SAMPLE_ID, cases[i].in,
                                          strlen(cases[i].in), NULL, 0, NULL);
        json_t *root;
        json_error_t jerr;
        const char *got;

        ck_assert_ptr_nonnull(text);
        root = json_loads(text, 0, &jerr);
        ck_assert_msg(root != NULL, "case %zu: invalid JSON", i);
        got = json_string_value(json_object_get(root, "stdout"));
        ck_assert_msg(got != NULL, "case %zu: stdout dropped", i);
        ck_assert_msg(got[0] == 'x', "case %zu: %s", i, got);
        ck_assert_msg(strstr(got, "\xef\xbf\xbd") != NULL,
                      "case %zu: no U+FFFD in %s", i, got);
        ck_assert_msg(strstr(got, cases[i].keep) != NULL,
                      "case %zu: lost \"%s\" in %s", i, cases[i].keep, got);
        ck_assert(pyexec_utf8_valid(got, strlen(got)));
        json_decref(root);
        free(text);
    }
}
END_TEST

/* Found by fuzz_request: the parser's message quotes the input and can
 * cut a multi-byte character; the message must stay valid UTF-8 or the
 * answer would lose its "error" key. */
START_TEST(test_error_message_is_valid_utf8)
{
    static const char body[] = "{\"code\": \"\\ud8\xc7\x8f\xdd\x82";
    pyexec_request_t req;
    char *answer;

    ck_assert_int_eq(pyexec_request_parse(body, sizeof(body) - 1, 1024,
                                          &req), -1);
    ck_assert_int_eq(req.status, 400);
    ck_assert(pyexec_utf8_valid(req.error, strlen(req.error)));
    answer = pyexec_response_json(NULL, NULL, 0, NULL, 0, req.error);
    ck_assert_ptr_nonnull(answer);
    ck_assert_ptr_nonnull(strstr(answer, "\"error\":\"Invalid JSON"));
    free(answer);
    /* and an invalid error text handed to the builder is repaired */
    answer = pyexec_response_json(NULL, NULL, 0, NULL, 0, "bad \xff text");
    ck_assert_ptr_nonnull(answer);
    ck_assert_ptr_nonnull(strstr(answer, "\"error\":\"bad \xef\xbf\xbd text"));
    free(answer);
}
END_TEST

/* --- the first bytes of a body ----------------------------------------- */

/* A body whose bytes say where they are: byte i is 'a' + i % 23. */
static char *numbered(size_t n)
{
    char *b = malloc(n);

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++) {
        b[i] = (char)('a' + i % 23);
    }
    return b;
}

/* Offer the next bytes of `body` (from b->seen on) in pieces of the
 * given sizes; after each, b holds the body's first bytes, at most the
 * limit, and has counted every byte offered. */
static void offer(pyexec_body_prefix_t *b, const char *body,
                  const size_t *pieces, size_t count)
{
    size_t at = (size_t)b->seen;

    for (size_t i = 0; i < count; i++) {
        ck_assert_int_eq(pyexec_body_prefix_add(b, body + at, pieces[i]), 0);
        at += pieces[i];
        ck_assert_uint_eq(b->seen, at);
        ck_assert_uint_eq(b->len, at < b->limit ? at : b->limit);
        ck_assert_uint_le(b->len, b->cap);
        ck_assert_uint_le(b->cap, b->limit);
        if (b->len > 0) {
            ck_assert_int_eq(memcmp(b->data, body, b->len), 0);
            ck_assert_int_eq(b->data[b->len], '\0');
        }
    }
}

static void assert_kept(const pyexec_body_prefix_t *b, size_t len,
                        uint64_t seen, int over)
{
    ck_assert_uint_eq(b->len, len);
    ck_assert_uint_eq(b->seen, seen);
    ck_assert_int_eq(pyexec_body_prefix_over(b), over);
}

START_TEST(test_prefix_stops_at_the_limit)
{
    /* the front's case: a read that crosses the limit and brings more
     * pieces after the one that crossed it (the front once copied all
     * of them into a buffer of the limit's size) */
    const size_t pieces[] = {3000, 1900, 8000, 192, 6000, 1};
    char *body = numbered(19093);
    pyexec_body_prefix_t b;

    pyexec_body_prefix_init(&b, 5000, 19093);
    offer(&b, body, pieces, sizeof(pieces) / sizeof(pieces[0]));
    ck_assert_uint_eq(b.cap, 5000);
    assert_kept(&b, 5000, 19093, 1);
    pyexec_body_prefix_clear(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.seen, 0);
    pyexec_body_prefix_clear(&b);
    free(body);
}
END_TEST

START_TEST(test_prefix_exactly_the_limit_is_not_over)
{
    const size_t pieces[] = {2500, 2500};
    char *body = numbered(5001);
    pyexec_body_prefix_t b;

    pyexec_body_prefix_init(&b, 5000, 5000);
    offer(&b, body, pieces, 2);
    ck_assert_uint_eq(b.len, 5000);
    ck_assert_int_eq(pyexec_body_prefix_over(&b), 0);
    ck_assert_int_eq(pyexec_body_prefix_add(&b, body + 5000, 1), 0);
    assert_kept(&b, 5000, 5001, 1);
    pyexec_body_prefix_clear(&b);
    free(body);
}
END_TEST

START_TEST(test_prefix_grows_as_the_body_comes)
{
    size_t pieces[60];
    char *body = numbered(60000);
    pyexec_body_prefix_t b;

    for (size_t i = 0; i < 60; i++) {
        pieces[i] = 1000;
    }
    /* no length declared: room for 16 KiB, doubled, never past the
     * limit */
    pyexec_body_prefix_init(&b, 50000, 0);
    offer(&b, body, pieces, 16);
    ck_assert_uint_eq(b.cap, 16384);
    offer(&b, body, pieces, 1);
    ck_assert_uint_eq(b.cap, 32768);
    pyexec_body_prefix_clear(&b);
    pyexec_body_prefix_init(&b, 50000, 0);
    offer(&b, body, pieces, 60);
    ck_assert_uint_eq(b.cap, 50000);
    ck_assert_uint_eq(b.len, 50000);
    pyexec_body_prefix_clear(&b);
    /* a length that was short of the truth: the buffer grows anyway */
    pyexec_body_prefix_init(&b, 50000, 100);
    offer(&b, body, pieces, 3);
    ck_assert_uint_eq(b.cap, 4096);
    pyexec_body_prefix_clear(&b);
    free(body);
}
END_TEST

START_TEST(test_prefix_empty_and_tiny)
{
    const size_t pieces[] = {0, 4, 0, 20};
    char *body = numbered(24);
    pyexec_body_prefix_t b;

    pyexec_body_prefix_init(&b, 5000, 0);
    ck_assert_int_eq(pyexec_body_prefix_add(&b, body, 0), 0);
    ck_assert_ptr_null(b.data);
    ck_assert_int_eq(pyexec_body_prefix_over(&b), 0);
    pyexec_body_prefix_clear(&b);
    /* a limit under the smallest first buffer */
    pyexec_body_prefix_init(&b, 10, 24);
    offer(&b, body, pieces, 4);
    ck_assert_uint_eq(b.cap, 10);
    assert_kept(&b, 10, 24, 1);
    pyexec_body_prefix_clear(&b);
    free(body);
}
END_TEST

Suite *request_suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc;

    tc = tcase_create("parse ok");
    tcase_add_test(tc, test_parse_code_only);
    tcase_add_test(tc, test_parse_display_result);
    tcase_add_test(tc, test_parse_stdin);
    tcase_add_test(tc, test_parse_with_id);
    tcase_add_test(tc, test_parse_routed_id);
    tcase_add_test(tc, test_json_media_type);
    tcase_add_test(tc, test_parse_resets_request);
    tcase_add_test(tc, test_parse_escapes);
    tcase_add_test(tc, test_parse_raw_utf8);
    tcase_add_test(tc, test_parse_uses_len);
    tcase_add_test(tc, test_parse_code_limit);
    tcase_add_test(tc, test_parse_code_too_large);
    tcase_add_test(tc, test_parse_code_limit_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse refused");
    tcase_add_test(tc, test_parse_empty);
    tcase_add_test(tc, test_parse_invalid_utf8);
    tcase_add_test(tc, test_parse_invalid_json);
    tcase_add_test(tc, test_parse_raw_nul);
    tcase_add_test(tc, test_parse_not_object);
    tcase_add_test(tc, test_parse_missing_code);
    tcase_add_test(tc, test_parse_code_not_string);
    tcase_add_test(tc, test_parse_id_not_string);
    tcase_add_test(tc, test_parse_id_bad_shape);
    tcase_add_test(tc, test_parse_duplicate_keys);
    tcase_add_test(tc, test_parse_nul_in_code);
    suite_add_tcase(s, tc);

    tc = tcase_create("body prefix");
    tcase_add_test(tc, test_prefix_stops_at_the_limit);
    tcase_add_test(tc, test_prefix_exactly_the_limit_is_not_over);
    tcase_add_test(tc, test_prefix_grows_as_the_body_comes);
    tcase_add_test(tc, test_prefix_empty_and_tiny);
    suite_add_tcase(s, tc);

    tc = tcase_create("utf8");
    /* the sweep makes over a million calls; leave room for sanitizers */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_utf8_valid);
    tcase_add_test(tc, test_utf8_invalid);
    tcase_add_test(tc, test_utf8_matches_jansson);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, test_response_all_fields);
    tcase_add_test(tc, test_response_omits_empty);
    tcase_add_test(tc, test_response_no_id);
    tcase_add_test(tc, test_response_lengths);
    tcase_add_test(tc, test_response_escaping);
    tcase_add_test(tc, test_response_repairs_utf8);
    tcase_add_test(tc, test_response_repairs_sequences);
    tcase_add_test(tc, test_answer_matches_jansson);
    tcase_add_test(tc, test_answer_in_pieces);
    tcase_add_test(tc, test_answer_with_display);
    tcase_add_test(tc, test_display_check_refuses);
    tcase_add_test(tc, test_events);
    tcase_add_test(tc, test_error_message_is_valid_utf8);
    suite_add_tcase(s, tc);

    return s;
}
