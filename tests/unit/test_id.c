/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "pyexec_id.h"
#include "test_suites.h"

#define SAMPLE_LOWER "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7"
#define SAMPLE_UPPER "0123ABCD-EF45-4789-A0B1-C2D3E4F5A6B7"

static const pyexec_id_t sample = { {
    0x01, 0x23, 0xab, 0xcd, 0xef, 0x45, 0x47, 0x89,
    0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0xa6, 0xb7
} };

static int parse_str(const char *s, pyexec_id_t *id)
{
    return pyexec_id_parse(s, strlen(s), id);
}

/* --- routes (PyExecRoute) --------------------------------------------- */

START_TEST(test_route_valid)
{
    char longest[PYEXEC_ROUTE_MAX + 2];

    ck_assert(pyexec_route_valid("h1", 2));
    ck_assert(pyexec_route_valid("Web-2_b", 7));
    memset(longest, 'a', sizeof(longest));
    ck_assert(pyexec_route_valid(longest, PYEXEC_ROUTE_MAX));
    ck_assert(!pyexec_route_valid(longest, PYEXEC_ROUTE_MAX + 1));
    ck_assert(!pyexec_route_valid("", 0));
    ck_assert(!pyexec_route_valid(NULL, 2));
    /* what would end or split a cookie value, a query or a route */
    ck_assert(!pyexec_route_valid("h.1", 3));
    ck_assert(!pyexec_route_valid("h;1", 3));
    ck_assert(!pyexec_route_valid("h&1", 3));
    ck_assert(!pyexec_route_valid("h 1", 3));
    ck_assert(!pyexec_route_valid("h1=", 3));
    ck_assert(!pyexec_route_valid("h\0001", 3));
}
END_TEST

START_TEST(test_parse_routed)
{
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];
    const char *routed = SAMPLE_LOWER ".h2";

    ck_assert_int_eq(pyexec_id_parse_routed(routed, strlen(routed), &id,
                                            route), 0);
    ck_assert(pyexec_id_equal(&id, &sample));
    ck_assert_str_eq(route, "h2");
    /* a plain id has no route */
    memset(route, 'x', sizeof(route));
    ck_assert_int_eq(pyexec_id_parse_routed(SAMPLE_UPPER, PYEXEC_ID_STRLEN,
                                            &id, route), 0);
    ck_assert(pyexec_id_equal(&id, &sample));
    ck_assert_str_eq(route, "");
}
END_TEST

START_TEST(test_parse_routed_rejects)
{
    static const char *const bad[] = {
        SAMPLE_LOWER ".",               /* a dot and no route */
        SAMPLE_LOWER "h2",              /* no dot */
        SAMPLE_LOWER ":h2",
        SAMPLE_LOWER ".h2.h3",          /* one route only */
        SAMPLE_LOWER ".h 2",
        SAMPLE_LOWER ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  /* 33 */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b.h2",           /* short id */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6bx.h2",
        ".h2",
    };
    pyexec_id_t id;
    char route[PYEXEC_ROUTE_MAX + 1];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(pyexec_id_parse_routed(bad[i], strlen(bad[i]), &id,
                                             route) == -1, "%s", bad[i]);
    }
    ck_assert_int_eq(pyexec_id_parse_routed(NULL, 40, &id, route), -1);
}
END_TEST

START_TEST(test_format_routed)
{
    char out[PYEXEC_ID_TEXT_MAX + 1], longest[PYEXEC_ROUTE_MAX + 1];
    char route[PYEXEC_ROUTE_MAX + 1];
    pyexec_id_t back;

    pyexec_id_format_routed(&sample, "h1", out);
    ck_assert_str_eq(out, SAMPLE_LOWER ".h1");
    pyexec_id_format_routed(&sample, NULL, out);
    ck_assert_str_eq(out, SAMPLE_LOWER);
    pyexec_id_format_routed(&sample, "", out);
    ck_assert_str_eq(out, SAMPLE_LOWER);
    /* the longest route fits, and reads back */
    memset(longest, 'z', PYEXEC_ROUTE_MAX);
    longest[PYEXEC_ROUTE_MAX] = '\0';
    pyexec_id_format_routed(&sample, longest, out);
    ck_assert_uint_eq(strlen(out), PYEXEC_ID_TEXT_MAX);
    ck_assert_int_eq(pyexec_id_parse_routed(out, strlen(out), &back, route),
                     0);
    ck_assert(pyexec_id_equal(&back, &sample));
    ck_assert_str_eq(route, longest);
}
END_TEST

/* The route is no secret and stays in what is logged; the id goes. */
START_TEST(test_redact_routed)
{
    const char *q = "id=" SAMPLE_LOWER ".h2&x=1";
    char out[128];

    ck_assert_uint_eq(pyexec_id_redact(q, out), 1);
    ck_assert_str_eq(out, "id=0123abcd" PYEXEC_ID_REDACTED ".h2&x=1");
}
END_TEST

/* --- generate -------------------------------------------------------- */

/* Many draws, so that a missing mask shows even though the random bits
 * would sometimes hit the right values by chance. */
START_TEST(test_generate_version_variant)
{
    int i;

    for (i = 0; i < 1000; i++) {
        pyexec_id_t id;

        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        ck_assert_uint_eq(id.b[6] >> 4, 4);
        ck_assert_uint_eq(id.b[8] >> 6, 2);
    }
}
END_TEST

/* Ids are capabilities: two draws must not repeat, and every bit that
 * is not fixed by the layout must actually vary. */
START_TEST(test_generate_random)
{
    pyexec_id_t first, id;
    uint8_t ored[PYEXEC_ID_BYTES], anded[PYEXEC_ID_BYTES];
    int i, j;

    ck_assert_int_eq(pyexec_id_generate(&first), 0);
    memset(ored, 0, sizeof(ored));
    memset(anded, 0xff, sizeof(anded));
    for (i = 0; i < 200; i++) {
        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        ck_assert(!pyexec_id_equal(&id, &first));
        ck_assert(!pyexec_id_is_zero(&id));
        for (j = 0; j < PYEXEC_ID_BYTES; j++) {
            ored[j] |= id.b[j];
            anded[j] &= id.b[j];
        }
    }
    for (j = 0; j < PYEXEC_ID_BYTES; j++) {
        uint8_t fixed = j == 6 ? 0xf0 : j == 8 ? 0xc0 : 0x00;

        /* the chance of a free bit staying put over 200 draws is 2^-199 */
        ck_assert_uint_eq((uint8_t)(ored[j] | fixed), 0xff);
        ck_assert_uint_eq((uint8_t)(anded[j] & (uint8_t)~fixed), 0x00);
    }
}
END_TEST

/* --- format ---------------------------------------------------------- */

START_TEST(test_format_known)
{
    char out[PYEXEC_ID_STRLEN + 8];

    memset(out, 'Z', sizeof(out));
    pyexec_id_format(&sample, out);
    ck_assert_str_eq(out, SAMPLE_LOWER);
    ck_assert_uint_eq(strlen(out), PYEXEC_ID_STRLEN);
}
END_TEST

START_TEST(test_format_generated_shape)
{
    int i, k;

    for (i = 0; i < 100; i++) {
        pyexec_id_t id;
        char out[PYEXEC_ID_STRLEN + 1];

        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        pyexec_id_format(&id, out);
        ck_assert_uint_eq(strlen(out), PYEXEC_ID_STRLEN);
        for (k = 0; k < PYEXEC_ID_STRLEN; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23) {
                ck_assert_int_eq(out[k], '-');
            }
            else {
                ck_assert_msg(isxdigit((unsigned char)out[k])
                              && !isupper((unsigned char)out[k]),
                              "char %d of %s is not lower-case hex", k, out);
            }
        }
        ck_assert_int_eq(out[14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", out[19]));
    }
}
END_TEST

START_TEST(test_format_extremes)
{
    pyexec_id_t id;
    char out[PYEXEC_ID_STRLEN + 1];

    memset(&id, 0, sizeof(id));
    pyexec_id_format(&id, out);
    ck_assert_str_eq(out, "00000000-0000-0000-0000-000000000000");
    memset(&id, 0xff, sizeof(id));
    pyexec_id_format(&id, out);
    ck_assert_str_eq(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}
END_TEST

/* --- parse ----------------------------------------------------------- */

START_TEST(test_parse_known)
{
    pyexec_id_t id;

    memset(&id, 0, sizeof(id));
    ck_assert_int_eq(parse_str(SAMPLE_LOWER, &id), 0);
    ck_assert_mem_eq(id.b, sample.b, PYEXEC_ID_BYTES);
}
END_TEST

START_TEST(test_parse_upper_and_mixed)
{
    pyexec_id_t id;

    memset(&id, 0, sizeof(id));
    ck_assert_int_eq(parse_str(SAMPLE_UPPER, &id), 0);
    ck_assert(pyexec_id_equal(&id, &sample));

    memset(&id, 0, sizeof(id));
    ck_assert_int_eq(parse_str("0123AbCd-eF45-4789-a0B1-C2d3E4f5A6b7", &id),
                     0);
    ck_assert(pyexec_id_equal(&id, &sample));
}
END_TEST

START_TEST(test_parse_round_trip)
{
    int i;

    for (i = 0; i < 100; i++) {
        pyexec_id_t id, back;
        char text[PYEXEC_ID_STRLEN + 1];

        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        pyexec_id_format(&id, text);
        memset(&back, 0, sizeof(back));
        ck_assert_int_eq(parse_str(text, &back), 0);
        ck_assert(pyexec_id_equal(&id, &back));
    }
}
END_TEST

/* Only the layout is checked, not the version: an id is looked up, not
 * trusted, so any well-formed one simply is not found. */
START_TEST(test_parse_nil)
{
    pyexec_id_t id;

    memset(&id, 0xaa, sizeof(id));
    ck_assert_int_eq(parse_str("00000000-0000-0000-0000-000000000000", &id),
                     0);
    ck_assert(pyexec_id_is_zero(&id));
}
END_TEST

START_TEST(test_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b",      /* one short */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b70",    /* one long */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7ab",   /* a whole byte more */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7 ",
        " 0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7",
        "{0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7}",
        "urn:uuid:0123abcd-ef45-4789-a0b1-c2d3e4f5a6b7",
        "0123abcdef454789a0b1c2d3e4f5a6b7",         /* no dashes */
        "0123abcdef45-4789-a0b1-c2d3e4f5a6b7-",     /* dash moved */
        "0123abc-def45-4789-a0b1-c2d3e4f5a6b7",
        "0123abcd-ef454-789-a0b1-c2d3e4f5a6b7",
        "0123abcd-ef45-4789a-0b1-c2d3e4f5a6b7",
        "0123abcd-ef45-4789-a0b1c-2d3e4f5a6b7",
        "0123abcd_ef45_4789_a0b1_c2d3e4f5a6b7",
        "0123abcg-ef45-4789-a0b1-c2d3e4f5a6b7",     /* g */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6bG",
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b:",     /* just past '9' */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b/",     /* just before '0' */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b@",     /* just before 'A' */
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6b`",     /* just before 'a' */
        "+123abcd-ef45-4789-a0b1-c2d3e4f5a6b7",
        "------------------------------------",
        "0123abcd-ef45-4789-a0b1-c2d3e4f5a6\xc3\xa9",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pyexec_id_t id;

        ck_assert_msg(parse_str(bad[i], &id) == -1, "accepted \"%s\"",
                      bad[i]);
    }
}
END_TEST

/* The length given is the whole input: a NUL inside it is not an end
 * of string, and bytes beyond it are never looked at. */
START_TEST(test_parse_length_is_exact)
{
    char buf[PYEXEC_ID_STRLEN + 2];
    pyexec_id_t id;

    memcpy(buf, SAMPLE_LOWER, PYEXEC_ID_STRLEN);
    buf[PYEXEC_ID_STRLEN] = 'x';
    buf[PYEXEC_ID_STRLEN + 1] = '\0';
    ck_assert_int_eq(pyexec_id_parse(buf, PYEXEC_ID_STRLEN, &id), 0);
    ck_assert(pyexec_id_equal(&id, &sample));
    ck_assert_int_eq(pyexec_id_parse(buf, PYEXEC_ID_STRLEN + 1, &id), -1);

    memcpy(buf, SAMPLE_LOWER, PYEXEC_ID_STRLEN);
    buf[20] = '\0';
    ck_assert_int_eq(pyexec_id_parse(buf, PYEXEC_ID_STRLEN, &id), -1);
    buf[20] = 'b';
    buf[8] = '\0';
    ck_assert_int_eq(pyexec_id_parse(buf, PYEXEC_ID_STRLEN, &id), -1);
}
END_TEST

START_TEST(test_parse_null)
{
    pyexec_id_t id;

    ck_assert_int_eq(pyexec_id_parse(NULL, PYEXEC_ID_STRLEN, &id), -1);
}
END_TEST

/* --- redact ---------------------------------------------------------- */

static void redacts(const char *in, const char *want, size_t count)
{
    char out[256];
    size_t n;

    memset(out, 'Z', sizeof(out));
    n = pyexec_id_redact(in, out);
    ck_assert_msg(!strcmp(out, want), "\"%s\" became \"%s\", not \"%s\"",
                  in, out, want);
    ck_assert_uint_eq(n, count);
    ck_assert_uint_le(strlen(out), strlen(in));
}

START_TEST(test_redact_query_forms)
{
    redacts("id=" SAMPLE_LOWER, "id=0123abcd...", 1);
    redacts("id=" SAMPLE_UPPER, "id=0123abcd...", 1);
    redacts("a=1&id=" SAMPLE_LOWER "&b=2", "a=1&id=0123abcd...&b=2", 1);
    /* repeated, under another name, glued to other text */
    redacts("id=" SAMPLE_LOWER "&id=" SAMPLE_UPPER "&x=" SAMPLE_LOWER,
            "id=0123abcd...&id=0123abcd...&x=0123abcd...", 3);
    redacts("x=ff" SAMPLE_LOWER "ff", "x=ff0123abcd...ff", 1);
    redacts(SAMPLE_LOWER SAMPLE_LOWER, "0123abcd...0123abcd...", 2);
    /* a run that ends inside an id takes the id's tail with it */
    redacts("x=00000000-0000-0000-0000-aaaa" SAMPLE_LOWER "&y",
            "x=00000000...&y", 1);
    redacts("x=00000000-0000-0000-0000-aaaa" SAMPLE_LOWER SAMPLE_LOWER,
            "x=00000000...0123abcd...", 2);
    /* the request line as a whole */
    redacts("GET /execute?id=" SAMPLE_LOWER " HTTP/1.1",
            "GET /execute?id=0123abcd... HTTP/1.1", 1);
}
END_TEST

/* An id is the same capability however a URL escapes its characters. */
START_TEST(test_redact_escaped)
{
    redacts("id=0123abcd%2Def45%2d4789-a0b1-c2d3e4f5a6b7",
            "id=0123abcd...", 1);
    redacts("id=%30%31%32%33%61%62%63%64-ef45-4789-a0b1-c2d3e4f5a6b7&z",
            "id=0123abcd...&z", 1);
    /* an escape that stands for no hex digit breaks the shape */
    redacts("id=0123abcd%2Xef45-4789-a0b1-c2d3e4f5a6b7",
            "id=0123abcd%2Xef45-4789-a0b1-c2d3e4f5a6b7", 0);
    /* a truncated escape at the very end is read up to its NUL only */
    redacts("id=0123abcd-ef45-4789-a0b1-c2d3e4f5a6b%",
            "id=0123abcd-ef45-4789-a0b1-c2d3e4f5a6b%", 0);
    redacts("%", "%", 0);
    redacts("%4", "%4", 0);
}
END_TEST

/* Anything short of the whole shape stays: one character off anywhere
 * (a dash moved or missing, a digit that is no hex digit), one short. */
START_TEST(test_redact_leaves_the_rest)
{
    char in[64];
    int k;

    for (k = 0; k < PYEXEC_ID_STRLEN; k++) {
        snprintf(in, sizeof(in), "id=%s", SAMPLE_LOWER);
        in[3 + k] = in[3 + k] == '-' ? '0' : k % 2 ? '-' : 'g';
        redacts(in, in, 0);
    }
    snprintf(in, sizeof(in), "id=%.35s&", SAMPLE_LOWER);
    redacts(in, in, 0);
    redacts("", "", 0);
    redacts("id=&x=nope", "id=&x=nope", 0);
    redacts("id=0123abcdef454789a0b1c2d3e4f5a6b7",
            "id=0123abcdef454789a0b1c2d3e4f5a6b7", 0);
    redacts("GET /index.html HTTP/1.1", "GET /index.html HTTP/1.1", 0);
}
END_TEST

/* Ids as the module makes them: the prefix stays, nothing of the rest. */
START_TEST(test_redact_generated)
{
    int i;

    for (i = 0; i < 100; i++) {
        pyexec_id_t id;
        char text[PYEXEC_ID_STRLEN + 1], in[64], out[64], want[64];

        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        pyexec_id_format(&id, text);
        snprintf(in, sizeof(in), "?id=%s", text);
        snprintf(want, sizeof(want), "?id=%.8s...", text);
        ck_assert_uint_eq(pyexec_id_redact(in, out), 1);
        ck_assert_str_eq(out, want);
        ck_assert_ptr_null(strstr(out, text + PYEXEC_ID_PREFIX_LEN));
    }
}
END_TEST

/* --- equal, is_zero, hash -------------------------------------------- */

START_TEST(test_equal)
{
    pyexec_id_t a = sample, b = sample;
    int i;

    ck_assert(pyexec_id_equal(&a, &b));
    /* a difference anywhere counts, first byte to last */
    for (i = 0; i < PYEXEC_ID_BYTES; i++) {
        b = sample;
        b.b[i] ^= 0x01;
        ck_assert_msg(!pyexec_id_equal(&a, &b), "byte %d ignored", i);
    }
}
END_TEST

START_TEST(test_is_zero)
{
    pyexec_id_t id;
    int i;

    memset(&id, 0, sizeof(id));
    ck_assert(pyexec_id_is_zero(&id));
    for (i = 0; i < PYEXEC_ID_BYTES; i++) {
        memset(&id, 0, sizeof(id));
        id.b[i] = 0x80;
        ck_assert_msg(!pyexec_id_is_zero(&id), "byte %d ignored", i);
    }
}
END_TEST

START_TEST(test_hash_stable)
{
    pyexec_id_t a = sample, b = sample;

    ck_assert_uint_eq(pyexec_id_hash(&a), pyexec_id_hash(&b));
    ck_assert_uint_eq(pyexec_id_hash(&a), pyexec_id_hash(&sample));
}
END_TEST

/* The registry masks the hash down to a power of two: the low bits
 * must spread random ids over every bucket. */
START_TEST(test_hash_spreads)
{
    unsigned int hits[64];
    int i;

    memset(hits, 0, sizeof(hits));
    for (i = 0; i < 4096; i++) {
        pyexec_id_t id;

        ck_assert_int_eq(pyexec_id_generate(&id), 0);
        hits[pyexec_id_hash(&id) & 63]++;
    }
    for (i = 0; i < 64; i++) {
        /* about 64 expected each; an empty bucket is ~e^-64 likely */
        ck_assert_msg(hits[i] > 0, "bucket %d never used", i);
        ck_assert_msg(hits[i] < 1024, "bucket %d takes %u of 4096", i,
                      hits[i]);
    }
}
END_TEST

Suite *id_suite(void)
{
    Suite *s = suite_create("id");
    TCase *tc;

    tc = tcase_create("generate");
    tcase_add_test(tc, test_generate_version_variant);
    tcase_add_test(tc, test_generate_random);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, test_format_known);
    tcase_add_test(tc, test_format_generated_shape);
    tcase_add_test(tc, test_format_extremes);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_known);
    tcase_add_test(tc, test_parse_upper_and_mixed);
    tcase_add_test(tc, test_parse_round_trip);
    tcase_add_test(tc, test_parse_nil);
    tcase_add_test(tc, test_parse_rejects);
    tcase_add_test(tc, test_parse_length_is_exact);
    tcase_add_test(tc, test_parse_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("routes");
    tcase_add_test(tc, test_route_valid);
    tcase_add_test(tc, test_parse_routed);
    tcase_add_test(tc, test_parse_routed_rejects);
    tcase_add_test(tc, test_format_routed);
    tcase_add_test(tc, test_redact_routed);
    suite_add_tcase(s, tc);

    tc = tcase_create("redact");
    tcase_add_test(tc, test_redact_query_forms);
    tcase_add_test(tc, test_redact_escaped);
    tcase_add_test(tc, test_redact_leaves_the_rest);
    tcase_add_test(tc, test_redact_generated);
    suite_add_tcase(s, tc);

    tc = tcase_create("compare");
    tcase_add_test(tc, test_equal);
    tcase_add_test(tc, test_is_zero);
    tcase_add_test(tc, test_hash_stable);
    tcase_add_test(tc, test_hash_spreads);
    suite_add_tcase(s, tc);

    return s;
}
