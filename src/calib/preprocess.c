/* Declared pre-processing: parsing the keys of the command line and of --preprocess files. */
#include "calib/preprocess.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

void mq_preprocess_init(struct mq_preprocess *pre)
{
    memset(pre, 0, sizeof *pre);
    pre->resize = MQ_RESIZE_STRETCH;
    pre->filter = MQ_FILTER_BILINEAR;
    pre->color = MQ_COLOR_RGB;
    pre->layout = MQ_LAYOUT_AUTO;
    pre->scale = 1.0f;
    pre->n_mean = 1;
    pre->mean[0] = 0.0f;
    pre->n_std = 1;
    pre->std[0] = 1.0f;
    pre->pad_zero = 1;
}

/* A number, or a fraction "1/255". */
static int parse_number(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno)
        return -1;
    if (*end == '/') {
        const char *d = end + 1;
        double den = strtod(d, &end);
        if (end == d || errno || den == 0.0)
            return -1;
        v /= den;
    }
    if (*end || !isfinite(v))
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_list(const char *s, float *out, int *n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MQ_PREPROCESS_MAX_CHANNELS || parse_number(tok, &out[*n]))
            return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

static int parse_positive(const char *s, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "224x224" (width x height) or "224". */
static int parse_size(const char *s, int64_t *w, int64_t *h)
{
    const char *x = strchr(s, 'x');
    char buf[64];
    if (!x)
        return parse_positive(s, 1 << 16, w) || parse_positive(s, 1 << 16, h) ? -1 : 0;
    if ((size_t)(x - s) >= sizeof buf)
        return -1;
    memcpy(buf, s, (size_t)(x - s));
    buf[x - s] = '\0';
    return parse_positive(buf, 1 << 16, w) || parse_positive(x + 1, 1 << 16, h) ? -1 : 0;
}

static int pick(const char *value, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

static const char *const keys[] = {
    "image-size", "resize", "crop", "filter", "color", "layout", "scale", "mean", "std",
    "pad-value", "sample-rate", "mono", "frame", "hop", "pad", "fill", "shorter-side", "carry",
};

int mq_preprocess_is_key(const char *key)
{
    return pick(key, keys, (int)(sizeof keys / sizeof *keys)) >= 0;
}

int mq_preprocess_set(struct mq_preprocess *pre, const char *key, const char *value,
                      struct mq_error *err)
{
    static const char *const resize[] = {"stretch", "shorter", "letterbox"};
    static const char *const filter[] = {"bilinear", "bicubic", "nearest"};
    static const char *const color[] = {"rgb", "bgr", "gray"};
    static const char *const layout[] = {"auto", "nchw", "nhwc"};
    int k = pick(key, keys, (int)(sizeof keys / sizeof *keys)), v = 0, bad = 0;
    if (k < 0)
        return mq_error_code(err, MQ_ERR_USAGE, "unknown pre-processing key '%s'", key);
    if (!value)
        value = "";
    switch (k) {
    case 0: bad = parse_size(value, &pre->width, &pre->height); break;
    case 1:
        bad = (v = pick(value, resize, 3)) < 0;
        pre->resize = (enum mq_resize_mode)v;
        break;
    case 2: bad = strcmp(value, "center") != 0 && strcmp(value, "none") != 0;
        pre->crop_center = strcmp(value, "center") == 0;
        break;
    case 3:
        bad = (v = pick(value, filter, 3)) < 0;
        pre->filter = (enum mq_resample_filter)v;
        break;
    case 4:
        bad = (v = pick(value, color, 3)) < 0;
        pre->color = (enum mq_color_mode)v;
        break;
    case 5:
        bad = (v = pick(value, layout, 3)) < 0;
        pre->layout = (enum mq_layout_mode)v;
        break;
    case 6: bad = parse_number(value, &pre->scale); break;
    case 7: bad = parse_list(value, pre->mean, &pre->n_mean); break;
    case 8:
        bad = parse_list(value, pre->std, &pre->n_std);
        for (int i = 0; !bad && i < pre->n_std; i++)
            bad = pre->std[i] == 0.0f;
        break;
    case 9: bad = parse_number(value, &pre->pad_value); break;
    case 10: bad = parse_positive(value, 1000000, &pre->sample_rate); break;
    case 11: pre->mono = 1; break;
    case 12: bad = parse_positive(value, INT64_C(1) << 32, &pre->frame); break;
    case 13: bad = parse_positive(value, INT64_C(1) << 32, &pre->hop); break;
    case 14: bad = strcmp(value, "zero") != 0 && strcmp(value, "none") != 0;
        pre->pad_zero = strcmp(value, "zero") == 0;
        break;
    case 15: {
        const char *eq = strrchr(value, '=');
        float number;
        bad = !eq || eq == value || (size_t)(eq - value) >= sizeof pre->fill_name[0] ||
              pre->n_fill == MQ_PREPROCESS_MAX_FILLS || parse_number(eq + 1, &number);
        if (!bad) {
            memcpy(pre->fill_name[pre->n_fill], value, (size_t)(eq - value));
            pre->fill_name[pre->n_fill][eq - value] = '\0';
            pre->fill_value[pre->n_fill++] = number;
        }
        break;
    }
    case 16: bad = parse_positive(value, 1 << 16, &pre->shorter_side); break;
    case 17: {
        const char *eq = strchr(value, '=');
        bad = !eq || eq == value || !eq[1] || (size_t)(eq - value) >= sizeof pre->carry_input[0] ||
              strlen(eq + 1) >= sizeof pre->carry_output[0] ||
              pre->n_carry == MQ_PREPROCESS_MAX_FILLS;
        if (!bad) {
            memcpy(pre->carry_input[pre->n_carry], value, (size_t)(eq - value));
            pre->carry_input[pre->n_carry][eq - value] = '\0';
            strcpy(pre->carry_output[pre->n_carry++], eq + 1);
        }
        break;
    }
    }
    if (bad) {
        static const char *const expect[] = {
            "WIDTHxHEIGHT, e.g. 224x224", "stretch, shorter or letterbox", "center or none",
            "bilinear, bicubic or nearest", "rgb, bgr or gray", "nchw, nhwc or auto",
            "a number or a fraction such as 1/255", "up to 4 numbers, comma-separated",
            "up to 4 non-zero numbers, comma-separated", "a number", "a rate in Hz",
            "", "a sample count", "a sample count", "zero or none",
            "NAME=VALUE (at most 8)", "a length in pixels",
            "INPUT=OUTPUT (at most 8)",
        };
        return mq_error_code(err, MQ_ERR_USAGE, "--%s takes %s, not '%s'", key, expect[k], value);
    }
    pre->any = 1;
    return MQ_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int mq_preprocess_load(struct mq_preprocess *pre, const char *path, struct mq_error *err)
{
    uint8_t *data;
    size_t size;
    if (mq_file_read(path, 1 << 20, &data, &size, err))
        return MQ_ERR;
    char *text = malloc(size + 1);
    if (!text) {
        free(data);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    memcpy(text, data, size);
    text[size] = '\0';
    free(data);
    int rc = MQ_OK, line_no = 0;
    if (strlen(text) != size)
        rc = mq_error_set(err, "%s: holds a NUL byte: a pre-processing file is text", path);
    for (char *line = text, *next; rc == MQ_OK && line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line_no++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *key = trim(line);
        if (!*key)
            continue;
        if (key[0] == '-' && key[1] == '-')
            key += 2;
        size_t n = strcspn(key, " \t=:");
        char *value = key + n;
        if (*value)
            *value++ = '\0';
        value = trim(value);
        if (*value == '=' || *value == ':')
            value = trim(value + 1);
        rc = mq_preprocess_set(pre, key, value, err);
        if (rc)
            mq_error_prefix(err, "%s, line %d: ", path, line_no);
    }
    free(text);
    return rc ? MQ_ERR : MQ_OK;
}
