#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "util/error.h"
#include "util/natural_sort.h"

START_TEST(set_returns_err_and_formats)
{
    struct mq_error err;
    ck_assert_int_eq(mq_error_set(&err, "tensor '%s' has rank %d", "x", 3), MQ_ERR);
    ck_assert_str_eq(err.message, "tensor 'x' has rank 3");
    ck_assert_int_eq(mq_error_code(&err, MQ_ERR_USAGE, "bad"), MQ_ERR_USAGE);
    ck_assert_str_eq(err.message, "bad");
}
END_TEST

START_TEST(prefix_adds_context_in_front)
{
    struct mq_error err;
    mq_error_set(&err, "input 'x' has rank 3, expected 4");
    mq_error_prefix(&err, "node '%s' (%s): ", "conv1", "Conv");
    ck_assert_str_eq(err.message, "node 'conv1' (Conv): input 'x' has rank 3, expected 4");
}
END_TEST

START_TEST(prefix_truncates_without_overflow)
{
    struct mq_error err;
    char long_text[2000];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    mq_error_set(&err, "%s", long_text);
    ck_assert_uint_eq(strlen(err.message), MQ_ERROR_MESSAGE_MAX - 1);
    mq_error_prefix(&err, "ctx: ");
    ck_assert_uint_eq(strlen(err.message), MQ_ERROR_MESSAGE_MAX - 1);
    ck_assert(strncmp(err.message, "ctx: aaa", 8) == 0);
    mq_error_prefix(&err, "%s", long_text);
    ck_assert_uint_eq(strlen(err.message), MQ_ERROR_MESSAGE_MAX - 1);
}
END_TEST

START_TEST(null_error_is_allowed)
{
    ck_assert_int_eq(mq_error_set(NULL, "x"), MQ_ERR);
    mq_error_prefix(NULL, "y");
    ck_assert_str_eq(mq_str(NULL), "");
    ck_assert_str_eq(mq_str("a"), "a");
}
END_TEST

START_TEST(natural_order)
{
    ck_assert_int_lt(mq_natural_compare("test_data_set_2", "test_data_set_10"), 0);
    ck_assert_int_gt(mq_natural_compare("input_10.pb", "input_9.pb"), 0);
    ck_assert_int_eq(mq_natural_compare("a01", "a1"), 0);
    ck_assert_int_lt(mq_natural_compare("a", "b"), 0);
    ck_assert_int_lt(mq_natural_compare("a", "a0"), 0);
    const char *names[] = {"s10", "s2", "s1", "s02x"};
    qsort(names, 4, sizeof names[0], mq_natural_compare_ptr);
    ck_assert_str_eq(names[0], "s1");
    ck_assert_str_eq(names[1], "s2");
    ck_assert_str_eq(names[2], "s02x");
    ck_assert_str_eq(names[3], "s10");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, set_returns_err_and_formats);
    tcase_add_test(tc, prefix_adds_context_in_front);
    tcase_add_test(tc, prefix_truncates_without_overflow);
    tcase_add_test(tc, null_error_is_allowed);
    tcase_add_test(tc, natural_order);
    return mq_check_run(s, tc);
}
