/* The run-and-report tail every Check suite's main() shares. */
#ifndef MQ_TESTS_CHECK_MAIN_H
#define MQ_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Adds tc to s, runs the suite and turns the failure count into main()'s exit status. */
static inline int mq_check_run(Suite *s, TCase *tc)
{
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
