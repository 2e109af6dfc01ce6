/* Escaping control characters in text bound for the terminal (util/text.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "util/text.h"

static const char *escaped(const char *s, int keep_newlines)
{
    static char out[256];
    mq_text_escape(s, keep_newlines, out, sizeof out);
    return out;
}

START_TEST(plain_text_and_utf8_pass_unchanged)
{
    ck_assert_str_eq(escaped("conv1/weight:0 (Conv)", 0), "conv1/weight:0 (Conv)");
    ck_assert_str_eq(escaped("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80", 0),
                     "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80");
    ck_assert_str_eq(escaped("back\\slash", 0), "back\\slash");
}
END_TEST

START_TEST(control_characters_become_escapes)
{
    /* The title-setting sequence a hostile node name carries. */
    ck_assert_str_eq(escaped("\x1b]0;pwned\x07", 0), "\\x1b]0;pwned\\x07");
    ck_assert_str_eq(escaped("a\x1b[2Jb\rc\x7f", 0), "a\\x1b[2Jb\\x0dc\\x7f");
    /* C1 controls as UTF-8 (U+009B is CSI on terminals that take 8-bit controls). */
    ck_assert_str_eq(escaped("x\xc2\x9b" "31m", 0), "x\\u009b31m");
    ck_assert_str_eq(escaped("\xc2\xa0", 0), "\xc2\xa0"); /* U+00A0 is not a control */
    /* A lone lead byte at the end is left as it is. */
    ck_assert_str_eq(escaped("\xc2", 0), "\xc2");
}
END_TEST

START_TEST(newlines_kept_only_when_asked_tabs_always)
{
    ck_assert_str_eq(escaped("one\ntwo\tthree", 1), "one\ntwo\tthree");
    ck_assert_str_eq(escaped("one\ntwo\tthree", 0), "one\\x0atwo\tthree");
}
END_TEST

START_TEST(short_buffers_are_cut_and_terminated)
{
    char out[6];
    size_t need = mq_text_escape("ab\x1b" "cd", 0, out, sizeof out);
    ck_assert_uint_eq(need, 8); /* a b \ x 1 b c d */
    ck_assert_str_eq(out, "ab\\x1");
    ck_assert_uint_eq(mq_text_escape("abc", 0, out, 1), 3);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(printf_escapes_the_arguments_and_long_lines)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(mq_text_printf(f, "node '%s': %d\n", "\x1b]0;x\x07", 7), 17);
    char long_name[3000];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    long_name[1500] = '\x1b';
    ck_assert_int_eq(mq_text_printf(f, "%s", long_name), 2999);
    ck_assert_int_eq(mq_text_write(f, "|\x01|", 0), 0);
    fclose(f);
    ck_assert_uint_eq(size, strlen("node '\\x1b]0;x\\x07': 7\n") + 2999 + 3 + 6);
    ck_assert(strncmp(text, "node '\\x1b]0;x\\x07': 7\n", 23) == 0);
    ck_assert(strstr(text, "nnn\\x1bnnn") != NULL);
    ck_assert(strstr(text, "|\\x01|") != NULL);
    ck_assert(strchr(text, '\x1b') == NULL);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util_text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, plain_text_and_utf8_pass_unchanged);
    tcase_add_test(tc, control_characters_become_escapes);
    tcase_add_test(tc, newlines_kept_only_when_asked_tabs_always);
    tcase_add_test(tc, short_buffers_are_cut_and_terminated);
    tcase_add_test(tc, printf_escapes_the_arguments_and_long_lines);
    return mq_check_run(s, tc);
}
