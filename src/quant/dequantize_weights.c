/*
 * Dequantize's folding of weights: a DequantizeLinear of constants
 * (quantized weights, int32 biases) is computed once, per tensor, per axis
 * or per block, and stored as a float initializer under the weight's
 * original name when the names tell it (`w_quantized` or `w_dequantized` ->
 * `w`); identical DequantizeLinear nodes share one initializer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tensor_proto.h"
#include "quant/dequantize_state.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"

static int is_integer_qtype(int t)
{
    switch (t) {
    case MQ_DTYPE_INT8: case MQ_DTYPE_UINT8: case MQ_DTYPE_INT16: case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT32: case MQ_DTYPE_INT4: case MQ_DTYPE_UINT4:
        return 1;
    default:
        return 0;
    }
}

/* Quantized values as int32 (4-bit types unpacked from raw_data, low nibble first). */
int mq_dequantize_decode_ints(const Onnx__TensorProto *p, const char *what, struct mq_tensor *out,
                       struct mq_error *err)
{
    int dtype = p->has_data_type ? p->data_type : 0;
    if (!is_integer_qtype(dtype))
        return mq_error_set(err, "'%s' has type %s; DequantizeLinear of it is not supported", what,
                            mq_dtype_name(dtype));
    if (mq_tensor_proto_validate(p, what, err))
        return MQ_ERR;
    if (p->n_dims > MQ_MAX_RANK)
        return mq_error_set(err, "'%s' has rank %zu", what, p->n_dims);
    if (dtype == MQ_DTYPE_INT4 || dtype == MQ_DTYPE_UINT4) {
        if (!p->has_raw_data)
            return mq_error_set(err, "'%s': 4-bit values outside raw_data are not supported", what);
        if (mq_tensor_alloc(out, MQ_DTYPE_INT32, (int)p->n_dims, p->dims, what, err))
            return MQ_ERR;
        int32_t *d = out->data;
        for (int64_t i = 0; i < out->count; i++) {
            int v = (p->raw_data.data[i / 2] >> (4 * (i & 1))) & 0xF;
            d[i] = dtype == MQ_DTYPE_INT4 && v >= 8 ? v - 16 : v;
        }
        return MQ_OK;
    }
    struct mq_tensor raw = {0};
    if (mq_tensor_from_proto(p, what, &raw, err))
        return MQ_ERR;
    int rc = mq_tensor_alloc(out, MQ_DTYPE_INT32, raw.rank, raw.dims, what, err);
    if (rc == MQ_OK)
        for (int64_t i = 0; i < raw.count; i++)
            ((int32_t *)out->data)[i] = (int32_t)mq_tensor_get_int64(&raw, i);
    mq_tensor_free(&raw);
    return rc;
}

static int decode_scale(const Onnx__TensorProto *p, const char *what, struct mq_tensor *out,
                        struct mq_error *err)
{
    if (mq_tensor_from_proto(p, what, out, err))
        return MQ_ERR;
    if (out->dtype != MQ_DTYPE_FLOAT && out->dtype != MQ_DTYPE_FLOAT16 &&
        out->dtype != MQ_DTYPE_BFLOAT16) {
        int rc = mq_error_set(err, "scale '%s' has type %s, expected a float type", what,
                              mq_dtype_name(out->dtype));
        mq_tensor_free(out);
        return rc;
    }
    return MQ_OK;
}

/*
 * y = (x - zero_point) * scale, per tensor, per axis or per block, the
 * subtraction in integers and the product in float as DequantizeLinear does.
 */
static int dequantize_values(const Onnx__NodeProto *node, const struct mq_tensor *x,
                             const struct mq_tensor *scale, const struct mq_tensor *zp,
                             struct mq_tensor *y, struct mq_error *err)
{
    long long axis = mq_node_attr_int(node, "axis", 1);
    long long block = mq_node_attr_int(node, "block_size", 0);
    char a[128], b[128];
    if (zp && !mq_shape_equal(zp, scale))
        return mq_error_set(err, "zero point shape %s differs from scale shape %s",
                            mq_shape_format(zp->rank, zp->dims, a, sizeof a),
                            mq_shape_format(scale->rank, scale->dims, b, sizeof b));
    int per_tensor = scale->count == 1 && block == 0;
    if (!per_tensor) {
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank)
            return mq_error_set(err, "axis %lld is out of range for rank %d", axis, x->rank);
        if (block < 0)
            return mq_error_set(err, "block_size %lld is negative", block);
        if (block == 0 && (scale->rank != 1 || scale->dims[0] != x->dims[axis]))
            return mq_error_set(err, "per-axis scale of shape %s does not match axis %lld of %s",
                                mq_shape_format(scale->rank, scale->dims, a, sizeof a), axis,
                                mq_shape_format(x->rank, x->dims, b, sizeof b));
        if (block > 0) {
            int ok = scale->rank == x->rank;
            for (int d = 0; ok && d < x->rank; d++)
                ok = d == axis ? scale->dims[d] == (x->dims[d] + block - 1) / block
                               : scale->dims[d] == x->dims[d];
            if (!ok)
                return mq_error_set(err, "blocked scale of shape %s does not match %s with "
                                    "block_size %lld on axis %lld",
                                    mq_shape_format(scale->rank, scale->dims, a, sizeof a),
                                    mq_shape_format(x->rank, x->dims, b, sizeof b), block, axis);
        }
    }
    if (mq_tensor_alloc(y, scale->dtype, x->rank, x->dims, "dequantized weight", err))
        return MQ_ERR;
    int64_t inner = 1;
    for (int d = (int)axis + 1; !per_tensor && d < x->rank; d++)
        inner *= x->dims[d];
    const int32_t *xv = x->data;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t s = 0;
        if (!per_tensor) {
            int64_t c = (i / inner) % x->dims[axis];
            if (block == 0) {
                s = c;
            } else {
                /* Same index in the scale tensor with the axis coordinate divided by block. */
                int64_t outer = i / (inner * x->dims[axis]);
                s = (outer * scale->dims[axis] + c / block) * inner + i % inner;
            }
        }
        int32_t z = zp ? (int32_t)mq_tensor_get_int64(zp, s) : 0;
        float v = (float)(xv[i] - z) * (float)mq_tensor_get_double(scale, s);
        switch (y->dtype) {
        case MQ_DTYPE_FLOAT: ((float *)y->data)[i] = v; break;
        case MQ_DTYPE_FLOAT16: ((uint16_t *)y->data)[i] = mq_float_to_half(v); break;
        default: ((uint16_t *)y->data)[i] = mq_float_to_bfloat16(v); break;
        }
    }
    return MQ_OK;
}

/* `base` without `suffix`, or NULL when it does not end with it. */
static char *strip_suffix(const char *base, const char *suffix)
{
    size_t n = strlen(base), s = strlen(suffix);
    if (n <= s || strcmp(base + n - s, suffix) != 0)
        return NULL;
    char *r = strndup(base, n - s);
    return r;
}

/* The name the weight had before quantization, when the names tell it and it is free. */
static char *original_name(struct graph_ctx *gc, const char *x, const char *out)
{
    const char *from[2] = {out, x};
    const char *suffix[2] = {"_dequantized", "_quantized"};
    for (int k = 0; k < 2; k++) {
        char *base = strip_suffix(from[k], suffix[k]);
        if (base && mq_strmap_get(gc->m->live, base) < 0)
            return base;
        free(base);
    }
    return NULL;
}

int mq_dequantize_fold_weight(struct graph_ctx *gc, int i)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[i];
    const char *xn = mq_graph_input_at(node, 0), *sn = mq_graph_input_at(node, 1),
               *zn = mq_graph_input_at(node, 2);
    const char *out = node->n_output > 0 ? node->output[0] : NULL;
    if (!xn || !sn || !out || !*out)
        return 0;
    Onnx__TensorProto *xp = mq_dequantize_find_initializer(gc, xn),
                      *sp = mq_dequantize_find_initializer(gc, sn);
    Onnx__TensorProto *zpp = zn ? mq_dequantize_find_initializer(gc, zn) : NULL;
    if (!xp || !sp || (zn && !zpp))
        return 0;

    char key[64];
    long long axis = mq_node_attr_int(node, "axis", 1),
              block = mq_node_attr_int(node, "block_size", 0);
    snprintf(key, sizeof key, "|%lld|%lld", axis, block);
    size_t klen = strlen(xn) + strlen(sn) + (zn ? strlen(zn) : 0) + strlen(key) + 3;
    char *fkey = malloc(klen);
    if (!fkey)
        return dequantize_oom(m);
    snprintf(fkey, klen, "%s|%s|%s%s", xn, sn, zn ? zn : "", key);
    int shared = mq_strmap_get(gc->folded, fkey);
    const char *target = NULL;
    char *new_name = NULL;
    int rc = MQ_OK;
    struct mq_tensor x = {0}, scale = {0}, zp = {0}, y = {0};
    if (shared >= 0) {
        target = gc->folded_names[shared];
    } else {
        struct mq_error *err = m->err;
        rc = mq_dequantize_decode_ints(xp, xn, &x, err);
        if (rc == MQ_OK)
            rc = decode_scale(sp, sn, &scale, err);
        if (rc == MQ_OK && zpp && zpp->data_type != xp->data_type)
            rc = mq_error_set(err, "zero point '%s' is %s but '%s' is %s", zn,
                              mq_dtype_name(zpp->data_type), xn, mq_dtype_name(xp->data_type));
        if (rc == MQ_OK && zpp)
            rc = mq_dequantize_decode_ints(zpp, zn, &zp, err);
        if (rc == MQ_OK)
            rc = dequantize_values(node, &x, &scale, zpp ? &zp : NULL, &y, err);
        if (rc) {
            mq_error_prefix(err, "node '%s' (DequantizeLinear): ", dequantize_node_label(node));
            goto done;
        }
        int is_output = mq_strmap_get(gc->outputs, out) >= 0;
        new_name = is_output ? NULL : original_name(gc, xn, out);
        target = new_name ? new_name : out;
        Onnx__TensorProto *proto = NULL;
        if (mq_tensor_to_proto(&y, target, &proto, err)) {
            rc = MQ_ERR;
            goto done;
        }
        if (mq_graph_append_ptr((void ***)&gc->g->initializer, &gc->g->n_initializer, proto)) {
            onnx__tensor_proto__free_unpacked(proto, NULL);
            rc = dequantize_oom(m);
            goto done;
        }
        char *kept = strdup(target);
        if (!kept || mq_names_add(&m->names, target) || mq_strmap_put(m->live, target, 1) ||
            mq_dequantize_push((void ***)&gc->folded_names, &gc->n_folded, &gc->cap_folded, kept) ||
            mq_strmap_put(gc->folded, fkey, gc->n_folded - 1)) {
            free(kept);
            rc = dequantize_oom(m);
            goto done;
        }
        target = kept;
        m->r->weights_folded++;
        if (new_name)
            m->r->weights_renamed++;
    }
    if (strcmp(target, out) != 0 && mq_graph_rename_reads(gc->g, out, target)) {
        rc = dequantize_oom(m);
        goto done;
    }
    if (mq_dequantize_add_candidate(m, xn) || mq_dequantize_add_candidate(m, sn) ||
        mq_dequantize_add_candidate(m, zn)) {
        rc = dequantize_oom(m);
        goto done;
    }
    gc->removed[i] = 1;
done:
    free(fkey);
    free(new_name);
    mq_tensor_free(&x);
    mq_tensor_free(&scale);
    mq_tensor_free(&zp);
    mq_tensor_free(&y);
    return rc;
}
