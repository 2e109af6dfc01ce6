/*
 * A small, strict JSON reader (RFC 8259) for files the tool wrote itself and
 * users may have edited: saved ranges.  It builds a tree; the caller walks it.
 *
 * Strict: no comments, no trailing commas, no NaN/Infinity, no duplicate keys,
 * no invalid UTF-8, no "\u0000" (keys and strings are C strings).  Bounded:
 * nesting deeper than MQ_JSON_MAX_DEPTH and documents larger than the caller's
 * limit are refused.  Errors give line and column.
 */
#ifndef MQ_JSON_READ_H
#define MQ_JSON_READ_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MQ_JSON_MAX_DEPTH 64

enum mq_json_type {
    MQ_JSON_NULL,
    MQ_JSON_BOOL,
    MQ_JSON_NUMBER,
    MQ_JSON_STRING,
    MQ_JSON_ARRAY,
    MQ_JSON_OBJECT,
};

struct mq_json_member;

struct mq_json_value {
    enum mq_json_type type;
    union {
        int boolean;
        struct {
            const char *text;  /* the number as written, inside the document's text */
            size_t len;
        } number;
        struct {
            char *chars;       /* decoded, NUL-terminated, valid UTF-8 */
            size_t len;
        } string;
        struct {
            struct mq_json_value *items;
            size_t n;
        } array;
        struct {
            struct mq_json_member *members; /* in document order */
            size_t n;
        } object;
    } u;
};

struct mq_json_member {
    char *key;
    struct mq_json_value value;
};

struct mq_json_doc {
    char *text;                /* NUL-terminated copy of the input */
    size_t len;
    struct mq_json_value root;
};

/* Parses len bytes of text (copied); `label` names the source in messages. */
int mq_json_parse(const char *text, size_t len, const char *label, struct mq_json_doc *doc,
                  struct mq_error *err);
/* Reads and parses a file of at most max_bytes. */
int mq_json_parse_file(const char *path, uint64_t max_bytes, struct mq_json_doc *doc,
                       struct mq_error *err);
void mq_json_doc_free(struct mq_json_doc *doc);

/* Member of an object by key; NULL when absent or when obj is not an object. */
const struct mq_json_value *mq_json_get(const struct mq_json_value *obj, const char *key);

/*
 * Number conversions: MQ_OK, or MQ_ERR (no message) when the value is not a
 * number of that kind: not a number at all, a fraction or exponent for the
 * integer forms, negative for uint64, out of range (a float that overflows to
 * infinity counts as out of range).
 */
int mq_json_to_uint64(const struct mq_json_value *v, uint64_t *out);
int mq_json_to_int64(const struct mq_json_value *v, int64_t *out);
int mq_json_to_double(const struct mq_json_value *v, double *out);
/* Parsed directly as float (strtof), so a float written shortest reads back exactly. */
int mq_json_to_float(const struct mq_json_value *v, float *out);

/* "object", "array", ... for messages. */
const char *mq_json_type_name(enum mq_json_type type);

#endif
