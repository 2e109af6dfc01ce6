/*
 * The string -> int hash map every module uses (open addressing, FNV-1a,
 * tombstones for deletion; keys are copied).
 */
#include "util/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mq_strmap {
    char **keys;   /* NULL empty, TOMBSTONE deleted */
    int *values;
    size_t cap, used, live;
};

static char tombstone;
#define TOMBSTONE (&tombstone)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct mq_strmap *mq_strmap_new(void)
{
    struct mq_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->values = calloc(m->cap, sizeof *m->values);
    if (!m->keys || !m->values) {
        free(m->keys);
        free(m->values);
        free(m);
        return NULL;
    }
    return m;
}

void mq_strmap_free(struct mq_strmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != TOMBSTONE)
            free(m->keys[i]);
    free(m->keys);
    free(m->values);
    free(m);
}

static size_t slot_of(const struct mq_strmap *m, const char *key, int *found)
{
    size_t mask = m->cap - 1, i = hash_str(key) & mask, first_free = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (!k) {
            *found = 0;
            return first_free != SIZE_MAX ? first_free : i;
        }
        if (k == TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (strcmp(k, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(struct mq_strmap *m)
{
    size_t cap = m->cap * 2;
    char **keys = calloc(cap, sizeof *keys);
    int *values = calloc(cap, sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    struct mq_strmap fresh = {keys, values, cap, 0, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i] || m->keys[i] == TOMBSTONE)
            continue;
        int found;
        size_t s = slot_of(&fresh, m->keys[i], &found);
        fresh.keys[s] = m->keys[i];
        fresh.values[s] = m->values[i];
        fresh.used++;
        fresh.live++;
    }
    free(m->keys);
    free(m->values);
    *m = fresh;
    return 0;
}

int mq_strmap_put(struct mq_strmap *m, const char *key, int value)
{
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m))
        return -1;
    int found;
    size_t s = slot_of(m, key, &found);
    if (found) {
        m->values[s] = value;
        return 0;
    }
    char *copy = strdup(key);
    if (!copy)
        return -1;
    if (!m->keys[s])
        m->used++;
    m->keys[s] = copy;
    m->values[s] = value;
    m->live++;
    return 0;
}

int mq_strmap_put_new(struct mq_strmap *m, const char *key, int value)
{
    int found;
    slot_of(m, key, &found);
    return found ? 0 : mq_strmap_put(m, key, value);
}

int mq_strmap_get(const struct mq_strmap *m, const char *key)
{
    int found;
    size_t s = slot_of(m, key, &found);
    return found ? m->values[s] : -1;
}

void mq_strmap_del(struct mq_strmap *m, const char *key)
{
    int found;
    size_t s = slot_of(m, key, &found);
    if (!found)
        return;
    free(m->keys[s]);
    m->keys[s] = TOMBSTONE;
    m->live--;
}
