/* The --max-memory size parser (cli/byte_size.c): units, and what it refuses. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "check_main.h"
#include "cli/byte_size.h"

START_TEST(plain_bytes_and_units)
{
    uint64_t b = 0;
    ck_assert_int_eq(mq_cli_parse_byte_size("0", &b), 0);
    ck_assert_uint_eq(b, 0);
    ck_assert_int_eq(mq_cli_parse_byte_size("1048576", &b), 0);
    ck_assert_uint_eq(b, 1048576);
    ck_assert_int_eq(mq_cli_parse_byte_size("1024K", &b), 0);
    ck_assert_uint_eq(b, 1024u << 10);
    ck_assert_int_eq(mq_cli_parse_byte_size("512M", &b), 0);
    ck_assert_uint_eq(b, 512ull << 20);
    ck_assert_int_eq(mq_cli_parse_byte_size("4G", &b), 0);
    ck_assert_uint_eq(b, 4ull << 30);
    ck_assert_int_eq(mq_cli_parse_byte_size("4g", &b), 0);
    ck_assert_uint_eq(b, 4ull << 30);
    ck_assert_int_eq(mq_cli_parse_byte_size("4GB", &b), 0);
    ck_assert_uint_eq(b, 4ull << 30);
    ck_assert_int_eq(mq_cli_parse_byte_size("4GiB", &b), 0);
    ck_assert_uint_eq(b, 4ull << 30);
    ck_assert_int_eq(mq_cli_parse_byte_size("2T", &b), 0);
    ck_assert_uint_eq(b, 2ull << 40);
    ck_assert_int_eq(mq_cli_parse_byte_size("18446744073709551615", &b), 0);
    ck_assert_uint_eq(b, UINT64_MAX);
    ck_assert_int_eq(mq_cli_parse_byte_size("16777215T", &b), 0);
    ck_assert_uint_eq(b, 16777215ull << 40);
}
END_TEST

START_TEST(refuses_malformed_and_overflowing)
{
    const char *bad[] = {"", "G", "-1", "+1", " 1", "1 ", "1.5G", "1X", "1KK", "1Gi", "1GiBs",
                         "1e9", "0x10", "18446744073709551616", "16777216T",
                         "99999999999999999999K", "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 42;
        ck_assert_msg(mq_cli_parse_byte_size(bad[i], &b) == -1, "'%s' was accepted", bad[i]);
        ck_assert_uint_eq(b, 42);
    }
    uint64_t b = 42;
    ck_assert_int_eq(mq_cli_parse_byte_size(NULL, &b), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_byte_size");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, plain_bytes_and_units);
    tcase_add_test(tc, refuses_malformed_and_overflowing);
    return mq_check_run(s, tc);
}
