/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdlib.h>
#include <string.h>

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

Suite *settings_suite(void)
{
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("sequence lock");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_block_list);
    tcase_add_test(tc, test_publish_and_take);
    tcase_add_test(tc, test_take_while_written);
    suite_add_tcase(s, tc);
    return s;
}
