/* The name table every module uses (util/strmap.c): lookups, replacement, deletion, growth. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_main.h"
#include "util/strmap.h"

START_TEST(put_get_replace_and_absent)
{
    struct mq_strmap *m = mq_strmap_new();
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(mq_strmap_get(m, "conv1/weight"), -1);
    ck_assert_int_eq(mq_strmap_put(m, "conv1/weight", 3), 0);
    ck_assert_int_eq(mq_strmap_put(m, "", 9), 0); /* the empty name is a key like any */
    ck_assert_int_eq(mq_strmap_get(m, "conv1/weight"), 3);
    ck_assert_int_eq(mq_strmap_get(m, ""), 9);
    ck_assert_int_eq(mq_strmap_get(m, "conv1/weigh"), -1);
    ck_assert_int_eq(mq_strmap_put(m, "conv1/weight", 4), 0); /* put replaces */
    ck_assert_int_eq(mq_strmap_get(m, "conv1/weight"), 4);
    ck_assert_int_eq(mq_strmap_put_new(m, "conv1/weight", 5), 0); /* put_new keeps the first */
    ck_assert_int_eq(mq_strmap_get(m, "conv1/weight"), 4);
    ck_assert_int_eq(mq_strmap_put_new(m, "conv2/weight", 6), 0);
    ck_assert_int_eq(mq_strmap_get(m, "conv2/weight"), 6);
    mq_strmap_free(m);
}
END_TEST

START_TEST(deleted_keys_are_gone_and_their_slots_reused)
{
    struct mq_strmap *m = mq_strmap_new();
    char name[32];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof name, "t%d", i);
            ck_assert_int_eq(mq_strmap_put(m, name, round * 100 + i), 0);
        }
        for (int i = 0; i < 40; i += 2) {
            snprintf(name, sizeof name, "t%d", i);
            mq_strmap_del(m, name);
        }
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof name, "t%d", i);
            ck_assert_int_eq(mq_strmap_get(m, name), i % 2 ? round * 100 + i : -1);
        }
    }
    mq_strmap_del(m, "never there");
    mq_strmap_free(m);
}
END_TEST

START_TEST(growth_keeps_every_key)
{
    /* Far past the first capacity, with names that share long prefixes, as exporters write. */
    enum { N = 20000 };
    struct mq_strmap *m = mq_strmap_new();
    char name[96];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "StatefulPartitionedCall/functional_1/conv2d_%d/BiasAdd:0", i);
        ck_assert_int_eq(mq_strmap_put(m, name, i), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "StatefulPartitionedCall/functional_1/conv2d_%d/BiasAdd:0", i);
        ck_assert_int_eq(mq_strmap_get(m, name), i);
    }
    snprintf(name, sizeof name, "StatefulPartitionedCall/functional_1/conv2d_%d/BiasAdd:0", N);
    ck_assert_int_eq(mq_strmap_get(m, name), -1);
    mq_strmap_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util_strmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, put_get_replace_and_absent);
    tcase_add_test(tc, deleted_keys_are_gone_and_their_slots_reused);
    tcase_add_test(tc, growth_keeps_every_key);
    return mq_check_run(s, tc);
}
