/* Scratch folders for suites that write files: paths inside them, and removal of the whole tree. */
#ifndef MQ_TESTS_TMP_TREE_H
#define MQ_TESTS_TMP_TREE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/tensor.h"
#include "model/tensor_proto.h"

static inline void tt_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* dir/rel in one of four rotating buffers, so one call can take several paths. */
static inline char *tt_path(const char *dir, const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, rel);
    return buf[k];
}

/* dir/test_data_set_<i>/input_0.pb holding t as the input `name`: one calibration sample. */
static inline void tt_write_sample(const char *dir, int i, const char *name,
                                   const struct mq_tensor *t)
{
    char path[600];
    struct mq_error err;
    snprintf(path, sizeof path, "%s/test_data_set_%d", dir, i);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/test_data_set_%d/input_0.pb", dir, i);
    ck_assert_msg(mq_tensor_write_pb(path, t, name, &err) == MQ_OK, "%s", err.message);
}

#endif
