/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * One Check suite per unit of the httpd-independent core; test_main.c
 * runs them all.
 */
#ifndef PYEXEC_TEST_SUITES_H
#define PYEXEC_TEST_SUITES_H

#include <check.h>

Suite *protocol_suite(void);
Suite *id_suite(void);
Suite *registry_suite(void);
Suite *request_suite(void);
Suite *io_suite(void);
Suite *ratelimit_suite(void);
Suite *settings_suite(void);

#endif /* PYEXEC_TEST_SUITES_H */
