/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyexec_ratelimit.h"
#include "test_suites.h"

#define SEC 1000000LL

static pyexec_ratelimit_t *new_rl(uint32_t n)
{
    void *mem = malloc(pyexec_ratelimit_size(n));

    ck_assert_ptr_nonnull(mem);
    return pyexec_ratelimit_init(mem, n);
}

START_TEST(test_burst_then_refused)
{
    pyexec_ratelimit_t *rl = new_rl(64);
    int64_t retry = -1;
    int i;

    /* a new client has a full bucket: burst requests pass at once */
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(pyexec_ratelimit_take(rl, "10.0.0.1", SEC, 2.0, 5,
                                               &retry), 1);
        ck_assert_int_eq(retry, 0);
    }
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "10.0.0.1", SEC, 2.0, 5,
                                           &retry), 0);
    /* at 2 per second the next token is half a second away */
    ck_assert_int_gt(retry, SEC / 2 - 10);
    ck_assert_int_le(retry, SEC / 2 + 10);
    free(rl);
}
END_TEST

START_TEST(test_refill_over_time)
{
    pyexec_ratelimit_t *rl = new_rl(64);
    int64_t retry;
    int i;

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", SEC, 1.0, 3,
                                               &retry), 1);
    }
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", SEC, 1.0, 3, &retry), 0);
    /* one second later exactly one more */
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", 2 * SEC, 1.0, 3,
                                           &retry), 1);
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", 2 * SEC, 1.0, 3,
                                           &retry), 0);
    /* a long rest refills to the burst, not beyond */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", 100 * SEC, 1.0, 3,
                                               &retry), 1);
    }
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "a", 100 * SEC, 1.0, 3,
                                           &retry), 0);
    free(rl);
}
END_TEST

START_TEST(test_clients_are_independent)
{
    pyexec_ratelimit_t *rl = new_rl(64);
    int64_t retry;

    ck_assert_int_eq(pyexec_ratelimit_take(rl, "::1", SEC, 1.0, 1, &retry), 1);
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "::1", SEC, 1.0, 1, &retry), 0);
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "127.0.0.1", SEC, 1.0, 1,
                                           &retry), 1);
    free(rl);
}
END_TEST

START_TEST(test_long_key_is_cut_not_overflowed)
{
    pyexec_ratelimit_t *rl = new_rl(16);
    char key[200];
    int64_t retry;

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    ck_assert_int_eq(pyexec_ratelimit_take(rl, key, SEC, 1.0, 1, &retry), 1);
    /* the same long key is the same client */
    ck_assert_int_eq(pyexec_ratelimit_take(rl, key, SEC, 1.0, 1, &retry), 0);
    free(rl);
}
END_TEST

START_TEST(test_flood_of_new_clients_evicts_quiet_ones_only)
{
    pyexec_ratelimit_t *rl = new_rl(16);
    int64_t retry;
    char key[32];
    int i;

    /* the busy client is refused now ... */
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "busy", SEC, 0.001, 1,
                                           &retry), 1);
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "busy", SEC, 0.001, 1,
                                           &retry), 0);
    /* ... a thousand other addresses pass through a 16-entry table
     * without crashing it, each with its own first token ... */
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "10.1.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(pyexec_ratelimit_take(rl, key, SEC + i, 0.001, 1,
                                               &retry), 1);
    }
    /* ... and the table still works for everyone */
    ck_assert_int_eq(pyexec_ratelimit_take(rl, "10.1.3.231", SEC + 1000,
                                           0.001, 1, &retry), 0);
    free(rl);
}
END_TEST

Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("buckets");

    tcase_add_test(tc, test_burst_then_refused);
    tcase_add_test(tc, test_refill_over_time);
    tcase_add_test(tc, test_clients_are_independent);
    tcase_add_test(tc, test_long_key_is_cut_not_overflowed);
    tcase_add_test(tc, test_flood_of_new_clients_evicts_quiet_ones_only);
    suite_add_tcase(s, tc);
    return s;
}
