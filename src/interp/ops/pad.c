/*
 * Pad: constant, reflect, edge and wrap padding (and cropping, with negative
 * pads) of any element type.
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/cast.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"

/* ---- Pad -------------------------------------------------------------------------------- */

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

struct pad_state {
    enum pad_mode mode;
    int n_pads;                   /* Pad-1..10 attribute */
    int64_t pads[2 * MQ_MAX_RANK];
    float value;
};

static int pad_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct pad_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    char buf[32];
    const char *mode = mq_attr_string(node, "mode", "constant", buf, sizeof buf);
    if (strcmp(mode, "constant") == 0)
        st->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        st->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        st->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        st->mode = PAD_WRAP;
    else
        return ops_fail(node, err, "mode '%s' is not one of constant, reflect, edge, wrap", mode);
    if (node->opset < 11) {
        const char *name = node->opset < 2 ? "paddings" : "pads";
        if (ops_attr_ints(node, name, st->pads, 2 * MQ_MAX_RANK, &st->n_pads, err))
            return MQ_ERR;
        if (st->n_pads < 0)
            return ops_fail(node, err, "attribute '%s' is required before opset 11", name);
        st->value = mq_attr_float(node, "value", 0.0f);
    }
    return MQ_OK;
}

/* Source index for output position o along an axis of size dim padded by `before`; -1: constant. */
static int64_t pad_source(enum pad_mode mode, int64_t o, int64_t before, int64_t dim)
{
    int64_t i = o - before;
    if (i >= 0 && i < dim)
        return i;
    switch (mode) {
    case PAD_EDGE:
        return i < 0 ? 0 : dim - 1;
    case PAD_WRAP: {
        int64_t m = i % dim;
        return m < 0 ? m + dim : m;
    }
    case PAD_REFLECT: {
        if (dim == 1)
            return 0;
        /* numpy's reflect repeats the mirror image when the pad is wider than the axis. */
        int64_t period = 2 * (dim - 1);
        int64_t m = i % period;
        if (m < 0)
            m += period;
        return m < dim ? m : period - m;
    }
    default:
        return -1;
    }
}

static int pad_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct pad_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int r = x->rank;
    size_t es = mq_dtype_size(x->dtype);
    int64_t pads[2 * MQ_MAX_RANK];
    int n_pads;
    unsigned char value[16] = {0};
    int axes[MQ_MAX_RANK], n_axes = r;
    for (int i = 0; i < r; i++)
        axes[i] = i;
    if (node->opset < 11) {
        n_pads = st->n_pads;
        memcpy(pads, st->pads, sizeof pads);
        if (ops_scalar_bytes(node, x->dtype, st->value, value, err))
            return MQ_ERR;
    } else {
        const struct mq_tensor *tp = ops_input(inputs, n_inputs, 1);
        const struct mq_tensor *tv = ops_input(inputs, n_inputs, 2);
        const struct mq_tensor *ta = node->opset >= 18 ? ops_input(inputs, n_inputs, 3) : NULL;
        if (!tp)
            return ops_fail(node, err, "input 'pads' is required");
        if (ops_read_ints(node, tp, 1, pads, 2 * MQ_MAX_RANK, &n_pads, err))
            return MQ_ERR;
        if (tv) {
            if (tv->count != 1)
                return ops_fail(node, err, "input 'constant_value' must hold one value, got %lld",
                                (long long)tv->count);
            if (mq_cast_elements(value, x->dtype, tv->data, tv->dtype, 1))
                return ops_fail(node, err, "input 'constant_value' has unsupported type %s",
                                mq_dtype_name(tv->dtype));
        }
        if (ta) {
            int64_t raw[MQ_MAX_RANK];
            if (ops_read_ints(node, ta, 3, raw, MQ_MAX_RANK, &n_axes, err) ||
                ops_normalize_axes(node, raw, n_axes, r, axes, err))
                return MQ_ERR;
        }
    }
    if (n_pads != 2 * n_axes)
        return ops_fail(node, err, "pads has %d values, expected %d (2 per padded axis)", n_pads,
                        2 * n_axes);
    int64_t before[MQ_MAX_RANK] = {0}, after[MQ_MAX_RANK] = {0}, dims[MQ_MAX_RANK];
    for (int i = 0; i < n_axes; i++) {
        before[axes[i]] = pads[i];
        after[axes[i]] = pads[i + n_axes];
    }
    int64_t total = 0;
    for (int a = 0; a < r; a++) {
        int64_t lim = INT64_MAX / 4;
        if (before[a] > lim || before[a] < -lim || after[a] > lim || after[a] < -lim)
            return ops_fail(node, err, "pads for axis %d are out of range", a);
        dims[a] = x->dims[a] + before[a] + after[a];
        if (dims[a] < 0)
            return ops_fail(node, err, "pads %lld and %lld make axis %d (size %lld) negative",
                            (long long)before[a], (long long)after[a], a,
                            (long long)x->dims[a]);
        if (dims[a] > 0 && x->dims[a] == 0 && st->mode != PAD_CONSTANT)
            return ops_fail(node, err, "cannot pad the empty axis %d in mode %s", a,
                            st->mode == PAD_EDGE ? "edge" : st->mode == PAD_WRAP ? "wrap"
                                                                              : "reflect");
        total += dims[a];
    }
    struct mq_tensor *out = &outputs[0];
    if (ops_alloc_uninit(node, out, x->dtype, r, dims, err))
        return MQ_ERR;
    if (out->count == 0)
        return MQ_OK;
    if (r == 0) {
        memcpy(out->data, x->data, es);
        return MQ_OK;
    }

    /* Per axis: output position -> source index (or -1 for the constant). */
    int64_t *maps = ops_scratch(node, total, sizeof(int64_t), err);
    if (!maps)
        return MQ_ERR;
    int64_t *map[MQ_MAX_RANK];
    int64_t at = 0;
    for (int a = 0; a < r; a++) {
        map[a] = maps + at;
        for (int64_t o = 0; o < dims[a]; o++)
            map[a][o] = pad_source(st->mode, o, before[a], x->dims[a]);
        at += dims[a];
    }
    int64_t in_strides[MQ_MAX_RANK];
    ops_strides(r, x->dims, in_strides);
    int last = r - 1;
    int64_t n = dims[last];
    /* The stretch of the last axis that copies straight through. */
    int64_t lo = before[last] > 0 ? before[last] : 0;
    int64_t hi = before[last] + x->dims[last] < n ? before[last] + x->dims[last] : n;
    if (hi < lo)
        hi = lo;
    const char *src = x->data;
    char *d = out->data;
    int64_t idx[MQ_MAX_RANK] = {0};
    for (;;) {
        int64_t off = 0;
        int constant_row = 0;
        for (int a = 0; a < last; a++) {
            int64_t m = map[a][idx[a]];
            if (m < 0)
                constant_row = 1;
            else
                off += m * in_strides[a];
        }
        if (constant_row) {
            mq_element_fill(d, value, n, es);
        } else {
            const char *row = src + off * (int64_t)es;
            for (int64_t o = 0; o < lo; o++) {
                int64_t m = map[last][o];
                memcpy(d + o * (int64_t)es, m < 0 ? (const char *)value : row + m * (int64_t)es,
                       es);
            }
            if (hi > lo)
                memcpy(d + lo * (int64_t)es, row + (lo - before[last]) * (int64_t)es,
                       (size_t)(hi - lo) * es);
            for (int64_t o = hi; o < n; o++) {
                int64_t m = map[last][o];
                memcpy(d + o * (int64_t)es, m < 0 ? (const char *)value : row + m * (int64_t)es,
                       es);
            }
        }
        d += n * (int64_t)es;
        int k = last - 1;
        for (; k >= 0; k--) {
            if (++idx[k] < dims[k])
                break;
            idx[k] = 0;
        }
        if (k < 0)
            break;
    }
    ops_scratch_free(maps);
    return MQ_OK;
}

/* Pad's pads were the attribute 'paddings' at 1, 'pads' from 2, inputs from 11; the axes input
   came at 18 and wrap mode at 19. */
const struct mq_kernel mq_kernels_pad[] = {
    {"", "Pad", 1, 1, pad_prepare, pad_run, free},
    {"", "Pad", 2, 10, pad_prepare, pad_run, free},
    {"", "Pad", 11, 17, pad_prepare, pad_run, free},
    {"", "Pad", 18, 18, pad_prepare, pad_run, free},
    {"", "Pad", 19, 0, pad_prepare, pad_run, free},
    {0},
};
