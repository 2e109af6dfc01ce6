/*
 * Window geometry of Conv, ConvTranspose and pooling: parsing
 * kernel_shape/strides/dilations/pads/auto_pad and resolving them against an input (see
 * spatial.h).
 */
#include "interp/ops/spatial.h"

#include <string.h>

#include "interp/attr.h"

static int read_list(const struct mq_kernel_node *node, const char *name, int64_t *dst, int max,
                     int64_t min_value, int *count, struct mq_error *err)
{
    const int64_t *v = NULL;
    int64_t n = mq_attr_ints(node, name, &v);
    *count = -1;
    if (n < 0)
        return MQ_OK;
    if (n > max)
        return mq_error_set(err, "node '%s' (%s): attribute %s has %lld values, at most %d allowed",
                            node->name, node->op_type, name, (long long)n, max);
    for (int64_t i = 0; i < n; i++) {
        /* the bound keeps every extent computed from these far from int64 overflow */
        if (v[i] < min_value || v[i] > INT32_MAX)
            return mq_error_set(err, "node '%s' (%s): attribute %s[%lld] = %lld is outside "
                                "[%lld, %d]", node->name, node->op_type, name, (long long)i,
                                (long long)v[i], (long long)min_value, INT32_MAX);
        dst[i] = v[i];
    }
    *count = (int)n;
    return MQ_OK;
}

int mq_spatial_parse(const struct mq_kernel_node *node, struct mq_spatial *s, int allow_dilations,
                     struct mq_error *err)
{
    memset(s, 0, sizeof *s);
    int max = MQ_MAX_RANK - 2;
    if (read_list(node, "kernel_shape", s->kernel, max, 1, &s->n_kernel, err) ||
        read_list(node, "strides", s->strides, max, 1, &s->n_strides, err) ||
        read_list(node, "pads", s->pads, 2 * max, 0, &s->n_pads, err))
        return MQ_ERR;
    s->n_dilations = -1;
    if (allow_dilations && read_list(node, "dilations", s->dilations, max, 1, &s->n_dilations, err))
        return MQ_ERR;
    if (s->n_pads >= 0 && s->n_pads % 2 != 0)
        return mq_error_set(err, "node '%s' (%s): attribute pads has %d values, expected an even "
                            "count (begins then ends)", node->name, node->op_type, s->n_pads);
    char buf[32];
    const char *ap = mq_attr_string(node, "auto_pad", "NOTSET", buf, sizeof buf);
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        s->auto_pad = MQ_AUTO_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        s->auto_pad = MQ_AUTO_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        s->auto_pad = MQ_AUTO_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        s->auto_pad = MQ_AUTO_PAD_VALID;
    else
        return mq_error_set(err, "node '%s' (%s): auto_pad '%s' is not one of NOTSET, SAME_UPPER, "
                            "SAME_LOWER, VALID", node->name, node->op_type, ap);
    return MQ_OK;
}

int mq_spatial_check_rank(const struct mq_kernel_node *node, const struct mq_spatial *s, int n,
                          struct mq_error *err)
{
    const char *bad = NULL;
    int got = 0, want = n;
    if (s->n_kernel >= 0 && s->n_kernel != n)
        bad = "kernel_shape", got = s->n_kernel;
    else if (s->n_strides >= 0 && s->n_strides != n)
        bad = "strides", got = s->n_strides;
    else if (s->n_dilations >= 0 && s->n_dilations != n)
        bad = "dilations", got = s->n_dilations;
    else if (s->n_pads >= 0 && s->n_pads != 2 * n)
        bad = "pads", got = s->n_pads, want = 2 * n;
    if (bad)
        return mq_error_set(err, "node '%s' (%s): attribute %s has %d values, expected %d for %d "
                            "spatial axes", node->name, node->op_type, bad, got, want, n);
    return MQ_OK;
}

int mq_spatial_forward(const struct mq_kernel_node *node, const struct mq_spatial *s, int n,
                       const int64_t *in, const int64_t *kernel, int ceil_mode, int64_t *out,
                       int64_t *pad_begin, int64_t *pad_end, int64_t *strides,
                       int64_t *dilations, struct mq_error *err)
{
    if (mq_spatial_check_rank(node, s, n, err))
        return MQ_ERR;
    for (int i = 0; i < n; i++) {
        int64_t st = s->n_strides > 0 ? s->strides[i] : 1;
        int64_t dl = s->n_dilations > 0 ? s->dilations[i] : 1;
        int64_t k = kernel[i];
        if (k < 1 || k > INT32_MAX || dl > INT32_MAX || st > INT32_MAX)
            return mq_error_set(err, "node '%s' (%s): kernel extent %lld on spatial axis %d is "
                                "invalid", node->name, node->op_type, (long long)k, i);
        int64_t extent = (k - 1) * dl + 1;
        int64_t pb = 0, pe = 0, o;
        if (s->auto_pad == MQ_AUTO_PAD_SAME_UPPER || s->auto_pad == MQ_AUTO_PAD_SAME_LOWER) {
            o = in[i] == 0 ? 0 : (in[i] - 1) / st + 1;
            int64_t total = o > 0 ? (o - 1) * st + extent - in[i] : 0;
            if (total < 0)
                total = 0;
            mq_spatial_split_pad(total, s->auto_pad == MQ_AUTO_PAD_SAME_UPPER, &pb, &pe);
        } else {
            if (s->auto_pad == MQ_AUTO_PAD_NOTSET && s->n_pads > 0) {
                pb = s->pads[i];
                pe = s->pads[i + n];
            }
            int64_t span = in[i] + pb + pe - extent;
            if (span < 0)
                return mq_error_set(err, "node '%s' (%s): spatial axis %d has extent %lld (with "
                                    "padding %lld), smaller than the kernel extent %lld",
                                    node->name, node->op_type, i, (long long)in[i],
                                    (long long)(in[i] + pb + pe), (long long)extent);
            o = span / st + 1;
            /* VALID never rounds up: its windows must lie inside the input */
            if (ceil_mode && s->auto_pad == MQ_AUTO_PAD_NOTSET && span % st != 0) {
                o++;
                /* the last window must start inside the input or its begin padding */
                if ((o - 1) * st >= in[i] + pb)
                    o--;
            }
        }
        out[i] = o;
        pad_begin[i] = pb;
        pad_end[i] = pe;
        strides[i] = st;
        dilations[i] = dl;
    }
    return MQ_OK;
}
