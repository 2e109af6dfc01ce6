/* Scratch folders for suites that write files: paths inside them, and removal of the whole tree. */
#ifndef MQ_TESTS_TMP_TREE_H
#define MQ_TESTS_TMP_TREE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
