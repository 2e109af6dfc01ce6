/* A small streaming JSON writer (info --json, reports, saved ranges; see json.h). */
#include "util/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void mq_json_init(struct mq_json *j, FILE *out, int pretty)
{
    memset(j, 0, sizeof *j);
    j->out = out;
    j->pretty = pretty;
}

static void put(struct mq_json *j, const char *s)
{
    if (fputs(s, j->out) < 0)
        j->failed = 1;
}

static void indent(struct mq_json *j)
{
    if (!j->pretty)
        return;
    put(j, "\n");
    for (int i = 0; i < j->depth; i++)
        put(j, "  ");
}

/* Before any value: the comma and indentation it needs, unless it follows a key. */
static void before_value(struct mq_json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0) {
        if (j->need_comma[j->depth])
            put(j, ",");
        j->need_comma[j->depth] = 1;
        indent(j);
    }
}

static void open_container(struct mq_json *j, const char *bracket)
{
    before_value(j);
    put(j, bracket);
    if (j->depth < 63)
        j->depth++;
    j->need_comma[j->depth] = 0;
}

static void close_container(struct mq_json *j, const char *bracket)
{
    int had_items = j->need_comma[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (had_items)
        indent(j);
    put(j, bracket);
    if (j->depth == 0 && j->pretty)
        put(j, "\n");
}

void mq_json_object_begin(struct mq_json *j) { open_container(j, "{"); }
void mq_json_object_end(struct mq_json *j) { close_container(j, "}"); }
void mq_json_array_begin(struct mq_json *j) { open_container(j, "["); }
void mq_json_array_end(struct mq_json *j) { close_container(j, "]"); }

static void write_string(struct mq_json *j, const char *s)
{
    put(j, "\"");
    char buf[8];
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': put(j, "\\\""); break;
        case '\\': put(j, "\\\\"); break;
        case '\n': put(j, "\\n"); break;
        case '\r': put(j, "\\r"); break;
        case '\t': put(j, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(buf, sizeof buf, "\\u%04x", *p);
                put(j, buf);
            } else {
                buf[0] = (char)*p;
                buf[1] = '\0';
                put(j, buf);
            }
        }
    }
    put(j, "\"");
}

void mq_json_key(struct mq_json *j, const char *key)
{
    before_value(j);
    write_string(j, key);
    put(j, j->pretty ? ": " : ":");
    j->after_key = 1;
}

void mq_json_string(struct mq_json *j, const char *s)
{
    before_value(j);
    write_string(j, s);
}

void mq_json_int(struct mq_json *j, int64_t v)
{
    char buf[32];
    before_value(j);
    snprintf(buf, sizeof buf, "%" PRId64, v);
    put(j, buf);
}

void mq_json_uint(struct mq_json *j, uint64_t v)
{
    char buf[32];
    before_value(j);
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    put(j, buf);
}

void mq_json_double(struct mq_json *j, double v)
{
    char buf[40];
    before_value(j);
    if (!isfinite(v)) {
        put(j, "null");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    put(j, buf);
}

void mq_json_float(struct mq_json *j, float v)
{
    char buf[40];
    before_value(j);
    if (!isfinite(v)) {
        put(j, "null");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    put(j, buf);
}

void mq_json_bool(struct mq_json *j, int v)
{
    before_value(j);
    put(j, v ? "true" : "false");
}

void mq_json_null(struct mq_json *j)
{
    before_value(j);
    put(j, "null");
}

/* Each one is mq_json_key followed by the matching value writer. */
#define KEY_VALUE_WRITER(kind, type)                                                              \
    void mq_json_key_##kind(struct mq_json *j, const char *key, type v)                           \
    {                                                                                              \
        mq_json_key(j, key);                                                                       \
        mq_json_##kind(j, v);                                                                      \
    }

KEY_VALUE_WRITER(int, int64_t)
KEY_VALUE_WRITER(uint, uint64_t)
KEY_VALUE_WRITER(double, double)
KEY_VALUE_WRITER(float, float)
KEY_VALUE_WRITER(bool, int)
