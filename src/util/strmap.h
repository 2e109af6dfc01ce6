/*
 * A string -> int hash map: the one name table of the project.  Lookups only;
 * nothing iterates it, so hash order never leaks into an output.
 */
#ifndef MQ_UTIL_STRMAP_H
#define MQ_UTIL_STRMAP_H

struct mq_strmap;
struct mq_strmap *mq_strmap_new(void);
void mq_strmap_free(struct mq_strmap *m);
/* 0 ok, -1 out of memory.  Replaces the value of an existing key. */
int mq_strmap_put(struct mq_strmap *m, const char *key, int value);
/* Inserts key -> value unless key is present (the first value wins): 0, or -1 when out
   of memory. */
int mq_strmap_put_new(struct mq_strmap *m, const char *key, int value);
/* The value, or -1 when absent. */
int mq_strmap_get(const struct mq_strmap *m, const char *key);
void mq_strmap_del(struct mq_strmap *m, const char *key);

#endif
