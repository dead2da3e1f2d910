/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdlib.h>

#include "test_suites.h"

int main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(protocol_suite());
    srunner_add_suite(sr, id_suite());
    srunner_add_suite(sr, registry_suite());
    srunner_add_suite(sr, request_suite());
    srunner_add_suite(sr, io_suite());
    srunner_add_suite(sr, ratelimit_suite());
    srunner_add_suite(sr, settings_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
