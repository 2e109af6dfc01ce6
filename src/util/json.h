/* A small streaming JSON writer (info --json, reports, saved ranges). */
#ifndef MQ_JSON_H
#define MQ_JSON_H

#include <stdint.h>
#include <stdio.h>

struct mq_json {
    FILE *out;
    int depth;
    int need_comma[64];
    int pretty;
    int after_key;
    int failed;          /* a write failed (disk full): the caller reports it */
};

void mq_json_init(struct mq_json *j, FILE *out, int pretty);
void mq_json_object_begin(struct mq_json *j);
void mq_json_object_end(struct mq_json *j);
void mq_json_array_begin(struct mq_json *j);
void mq_json_array_end(struct mq_json *j);
void mq_json_key(struct mq_json *j, const char *key);
void mq_json_string(struct mq_json *j, const char *s);
void mq_json_int(struct mq_json *j, int64_t v);
void mq_json_uint(struct mq_json *j, uint64_t v);
/* Shortest text that reads back to the same double; NaN and Inf become null. */
void mq_json_double(struct mq_json *j, double v);
/* Shortest text that reads back to the same float. */
void mq_json_float(struct mq_json *j, float v);
void mq_json_bool(struct mq_json *j, int v);
void mq_json_null(struct mq_json *j);

/* A key and its value in one call, for the common object member. */
void mq_json_key_int(struct mq_json *j, const char *key, int64_t v);
void mq_json_key_uint(struct mq_json *j, const char *key, uint64_t v);
void mq_json_key_double(struct mq_json *j, const char *key, double v);
void mq_json_key_float(struct mq_json *j, const char *key, float v);
void mq_json_key_bool(struct mq_json *j, const char *key, int v);

#endif
