/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyexec_settings.h"
#include "test_suites.h"

/* The shared block (as httpd's parent and the supervisor see it), what
 * the parent publishes, and the supervisor's copy. */
static pyexec_settings_t *live, *mine, *got;

static void setup(void)
{
    live = calloc(1, sizeof(*live));
    mine = calloc(1, sizeof(*mine));
    got = calloc(1, sizeof(*got));
    ck_assert(live && mine && got);
}

static void teardown(void)
{
    free(live);
    free(mine);
    free(got);
}

START_TEST(test_block_list)
{
    char name[1000];
    int n = 0;

    ck_assert_int_eq(pyexec_settings_block(mine, "os"), 0);
    ck_assert_int_eq(pyexec_settings_block(mine, "sys"), 0);
    ck_assert_uint_eq(mine->names_len, 7);
    ck_assert_mem_eq(mine->blocked, "os\0sys\0", 7);
    /* fills up to what a SPAWN frame carries, and refuses beyond */
    memset(name, 'm', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    while (pyexec_settings_block(mine, name) == 0) {
        n++;
    }
    ck_assert_int_gt(n, 50);
    ck_assert_uint_le(mine->names_len, PYEXEC_SPAWN_NAMES_MAX);
    ck_assert_uint_gt(mine->names_len + sizeof(name), PYEXEC_SPAWN_NAMES_MAX);
    ck_assert_int_eq(pyexec_settings_block(mine, "x"), 0);
}
END_TEST

START_TEST(test_publish_and_take)
{
    mine->spare_helpers = 4;
    mine->max_sessions = 100;
    mine->timeout = 2000000;
    mine->spawn.max_output = 1 << 20;
    pyexec_settings_block(mine, "os");
    mine->gen = 12345;          /* not the writer's to choose */

    /* nothing published yet: a supervisor that has generation 0 */
    ck_assert_int_eq(pyexec_settings_take(live, 0, got), 0);
    pyexec_settings_publish(live, mine);
    ck_assert_uint_eq(live->gen, 2);
    ck_assert_int_eq(pyexec_settings_take(live, 0, got), 1);
    ck_assert_uint_eq(got->gen, 2);
    ck_assert_uint_eq(got->spare_helpers, 4);
    ck_assert_uint_eq(got->max_sessions, 100);
    ck_assert(got->timeout == 2000000);
    ck_assert_uint_eq(got->spawn.max_output, 1 << 20);
    ck_assert_uint_eq(got->names_len, 3);
    ck_assert_mem_eq(got->blocked, "os\0", 3);
    /* taken already */
    ck_assert_int_eq(pyexec_settings_take(live, got->gen, got), 0);

    /* a graceful restart publishes again */
    mine->max_sessions = 50;
    pyexec_settings_publish(live, mine);
    ck_assert_uint_eq(live->gen, 4);
    ck_assert_int_eq(pyexec_settings_take(live, 2, got), 1);
    ck_assert_uint_eq(got->max_sessions, 50);
}
END_TEST

/* The parent mid-write (gen odd): nothing is taken, and what the reader
 * had is left alone. */
START_TEST(test_take_while_written)
{
    mine->max_sessions = 9;
    pyexec_settings_publish(live, mine);
    live->gen = 5;
    got->max_sessions = 77;
    ck_assert_int_eq(pyexec_settings_take(live, 2, got), 0);
    ck_assert_uint_eq(got->max_sessions, 77);
    live->gen = 6;
    ck_assert_int_eq(pyexec_settings_take(live, 2, got), 1);
    ck_assert_uint_eq(got->gen, 6);
    ck_assert_uint_eq(got->max_sessions, 9);
}
END_TEST

/* No more names than the zygote takes: beyond them, names would go
 * unblocked without a word. */
START_TEST(test_block_list_count)
{
    char name[16];

    for (int i = 0; i < PYEXEC_SPAWN_NAMES_COUNT_MAX; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        ck_assert_int_eq(pyexec_settings_block(mine, name), 0);
    }
    ck_assert_uint_eq(mine->names_count, PYEXEC_SPAWN_NAMES_COUNT_MAX);
    ck_assert_int_eq(pyexec_settings_block(mine, "one_more"), -1);
}
END_TEST

/* The list fills to exactly what a SPAWN frame can carry. */
START_TEST(test_block_list_fills_exactly)
{
    char name[PYEXEC_SPAWN_NAMES_MAX];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_eq(pyexec_settings_block(mine, name), 0);
    ck_assert_uint_eq(mine->names_len, PYEXEC_SPAWN_NAMES_MAX);
    ck_assert_int_eq(pyexec_settings_block(mine, ""), -1);
}
END_TEST

/* A writer publishing while a reader takes: every copy taken is one the
 * writer published whole, never half of one and half of the next. Each
 * published set is self-consistent (every field and every byte of the
 * list says k), so a torn copy shows. */
static volatile int writing;

static void *writer(void *unused)
{
    pyexec_settings_t *w = calloc(1, sizeof(*w));

    (void)unused;
    for (uint32_t k = 1; writing; k++) {
        w->spare_helpers = w->max_sessions = k;
        w->timeout = w->idle_timeout = k;
        w->spawn.max_output = k;
        w->names_len = 1000 + k % 3000;
        memset(w->blocked, (int)(k & 0xff), w->names_len);
        pyexec_settings_publish(live, w);
        if (k % 4 == 0) {
            /* now and then a quiet moment, so that takes also succeed */
            struct timespec pause = { 0, 20000 };

            nanosleep(&pause, NULL);
        }
    }
    free(w);
    return NULL;
}

START_TEST(test_take_never_tears)
{
    struct timespec t0, t;
    pthread_t th;
    uint32_t have = 0, taken = 0;

    writing = 1;
    ck_assert_int_eq(pthread_create(&th, NULL, writer, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (pyexec_settings_take(live, have, got)) {
            uint32_t k = got->spare_helpers;

            ck_assert_uint_eq(got->gen % 2, 0);
            ck_assert_uint_eq(got->max_sessions, k);
            ck_assert(got->timeout == k && got->idle_timeout == k);
            ck_assert_uint_eq(got->spawn.max_output, k);
            ck_assert_uint_eq(got->names_len, 1000 + k % 3000);
            /* one check, not one per byte: each ck_assert costs a
             * system call, and a slow reader proves little here */
            uint32_t torn = 0;

            for (uint32_t i = 0; i < got->names_len; i++) {
                torn += (unsigned char)got->blocked[i] != (k & 0xff);
            }
            ck_assert_uint_eq(torn, 0);
            have = got->gen;
            taken++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec)
             < 500000000L);
    writing = 0;
    pthread_join(th, NULL);
    ck_assert_uint_gt(taken, 20);
}
END_TEST

Suite *settings_suite(void)
{
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("sequence lock");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_block_list);
    tcase_add_test(tc, test_publish_and_take);
    tcase_add_test(tc, test_take_while_written);
    tcase_add_test(tc, test_block_list_fills_exactly);
    tcase_add_test(tc, test_block_list_count);
    tcase_add_test(tc, test_take_never_tears);
    suite_add_tcase(s, tc);
    return s;
}
