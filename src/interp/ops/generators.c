/*
 * Ops that make a tensor from attributes or from their input's shape, not
 * its values: Constant, ConstantOfShape, Range, Shape, Size and EyeLike.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/cast.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"
#include "model/tensor_proto.h"

/* ---- Shape / Size ----------------------------------------------------------------------- */

struct shape_state {
    int64_t start, end;
    int has_end;
};

static int shape_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct shape_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset >= 15) {
        st->start = mq_attr_int(node, "start", 0);
        st->has_end = mq_attr_has(node, "end");
        st->end = mq_attr_int(node, "end", 0);
    }
    return MQ_OK;
}

static int shape_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct shape_state *st = node->state;
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    if (!x)
        return ops_fail(node, err, "required input 0 is missing");
    int64_t r = x->rank;
    int64_t start = st->start < 0 ? st->start + r : st->start;
    int64_t end = st->has_end ? (st->end < 0 ? st->end + r : st->end) : r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    if (ops_alloc(node, &outputs[0], MQ_DTYPE_INT64, 1, &n, err))
        return MQ_ERR;
    int64_t *d = outputs[0].data;
    for (int64_t i = 0; i < n; i++)
        d[i] = x->dims[start + i];
    return MQ_OK;
}

static int size_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    if (!x)
        return ops_fail(node, err, "required input 0 is missing");
    if (ops_alloc(node, &outputs[0], MQ_DTYPE_INT64, 0, NULL, err))
        return MQ_ERR;
    *(int64_t *)outputs[0].data = x->count;
    return MQ_OK;
}

/* ---- Constant / ConstantOfShape --------------------------------------------------------- */

struct value_state {
    struct mq_tensor value;
};

static void value_destroy(void *p)
{
    struct value_state *st = p;
    if (st)
        mq_tensor_free(&st->value);
    free(st);
}

static int decode_tensor_attr(struct mq_kernel_node *node, const char *name, struct mq_tensor *out,
                              struct mq_error *err)
{
    const Onnx__TensorProto *t = mq_attr_tensor(node, name);
    if (!t)
        return ops_fail(node, err, "attribute '%s' holds no tensor", name);
    char what[256];
    snprintf(what, sizeof what, "node '%s' (%s) attribute '%s'", node->name, node->op_type,
             name);
    if (t->has_data_type && t->data_type == MQ_DTYPE_STRING)
        return ops_fail(node, err, "attribute '%s' is a string tensor, which is not supported",
                        name);
    return mq_tensor_from_proto(t, what, out, err);
}

static int constant_of_shape_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct value_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (!mq_attr_has(node, "value")) {
        int64_t one = 1;
        return ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 1, &one, err);
    }
    if (decode_tensor_attr(node, "value", &st->value, err))
        return MQ_ERR;
    if (st->value.count != 1)
        return ops_fail(node, err, "attribute 'value' must hold one element, got %lld",
                        (long long)st->value.count);
    if (mq_dtype_size(st->value.dtype) == 0)
        return ops_fail(node, err, "attribute 'value' has unsupported type %s",
                        mq_dtype_name(st->value.dtype));
    return MQ_OK;
}

static int constant_of_shape_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                 const struct mq_tensor *const *inputs, int n_inputs,
                                 struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct value_state *st = node->state;
    const struct mq_tensor *shape_t;
    if (ops_require(node, inputs, n_inputs, 0, &shape_t, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    int n;
    if (ops_read_ints(node, shape_t, 0, dims, MQ_MAX_RANK, &n, err))
        return MQ_ERR;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0) {
            char s[256];
            return ops_fail(node, err, "shape %s has a negative dim",
                            mq_shape_format(n, dims, s, sizeof s));
        }
    if (ops_alloc(node, &outputs[0], st->value.dtype, n, dims, err))
        return MQ_ERR;
    mq_element_fill(outputs[0].data, st->value.data, outputs[0].count,
                    mq_dtype_size(st->value.dtype));
    return MQ_OK;
}

static int constant_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct value_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    static const char *const kinds[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints", "value_string", "value_strings",
                                        "sparse_value"};
    const char *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (mq_attr_has(node, kinds[i])) {
            if (kind)
                return ops_fail(node, err, "has both '%s' and '%s'; exactly one value attribute "
                                "is allowed", kind, kinds[i]);
            kind = kinds[i];
        }
    if (!kind)
        return ops_fail(node, err, "needs one of the attributes value, value_float(s), "
                        "value_int(s)");
    if (strcmp(kind, "value") == 0)
        return decode_tensor_attr(node, "value", &st->value, err);
    if (strcmp(kind, "value_float") == 0) {
        if (ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 0, NULL, err))
            return MQ_ERR;
        *(float *)st->value.data = mq_attr_float(node, "value_float", 0.0f);
        return MQ_OK;
    }
    if (strcmp(kind, "value_int") == 0) {
        if (ops_alloc(node, &st->value, MQ_DTYPE_INT64, 0, NULL, err))
            return MQ_ERR;
        *(int64_t *)st->value.data = mq_attr_int(node, "value_int", 0);
        return MQ_OK;
    }
    if (strcmp(kind, "value_floats") == 0) {
        const float *v;
        int64_t n = mq_attr_floats(node, "value_floats", &v);
        if (ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 1, &n, err))
            return MQ_ERR;
        if (n > 0)
            memcpy(st->value.data, v, sizeof(float) * (size_t)n);
        return MQ_OK;
    }
    if (strcmp(kind, "value_ints") == 0) {
        const int64_t *v;
        int64_t n = mq_attr_ints(node, "value_ints", &v);
        if (ops_alloc(node, &st->value, MQ_DTYPE_INT64, 1, &n, err))
            return MQ_ERR;
        if (n > 0)
            memcpy(st->value.data, v, sizeof(int64_t) * (size_t)n);
        return MQ_OK;
    }
    return ops_fail(node, err, "attribute '%s' is not supported (string and sparse constants "
                    "cannot be held by this interpreter)", kind);
}

static int constant_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct value_state *st = node->state;
    return ops_copy_reshaped(node, &st->value, st->value.rank, st->value.dims, &outputs[0], err);
}

/* ---- Range ------------------------------------------------------------------------------ */

#define RANGE_FILL(T, ACC)                                                                         \
    {                                                                                              \
        T *d = (T *)out->data;                                                                     \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = (T)(ACC);                                                                       \
    }                                                                                              \
    break;

static int range_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        if (ops_require(node, inputs, n_inputs, i, &t[i], err))
            return MQ_ERR;
        if (t[i]->count != 1)
            return ops_fail(node, err, "input '%s' must be a scalar, got %lld values",
                            ops_input_name(node, i), (long long)t[i]->count);
        if (t[i]->dtype != t[0]->dtype)
            return ops_fail(node, err, "inputs have different types (%s and %s)",
                            mq_dtype_name(t[0]->dtype), mq_dtype_name(t[i]->dtype));
    }
    int dtype = t[0]->dtype;
    int is_float = mq_dtype_is_float(dtype);
    if (!is_float && !ops_is_integer_dtype(dtype))
        return ops_fail(node, err, "type %s is not supported", mq_dtype_name(dtype));
    int64_t n;
    double fs = 0, fd = 0;
    int64_t is = 0, id = 0;
    if (is_float) {
        fs = mq_tensor_get_double(t[0], 0);
        double fl = mq_tensor_get_double(t[1], 0);
        fd = mq_tensor_get_double(t[2], 0);
        if (fd == 0 || fd != fd || fs != fs || fl != fl)
            return ops_fail(node, err, "delta must be non-zero and the inputs finite");
        double c = ceil((fl - fs) / fd);
        if (!(c < 9.0e15))
            return ops_fail(node, err, "the range has too many elements");
        n = c > 0 ? (int64_t)c : 0;
    } else {
        is = mq_tensor_get_int64(t[0], 0);
        int64_t il = mq_tensor_get_int64(t[1], 0);
        id = mq_tensor_get_int64(t[2], 0);
        if (id == 0)
            return ops_fail(node, err, "delta must be non-zero");
        if (id > 0)
            n = il > is ? (int64_t)(((uint64_t)il - (uint64_t)is - 1) / (uint64_t)id) + 1 : 0;
        else
            n = is > il ? (int64_t)(((uint64_t)is - (uint64_t)il - 1) /
                                    ((uint64_t)(-(id + 1)) + 1)) + 1 : 0;
    }
    if (ops_alloc(node, &outputs[0], dtype, 1, &n, err))
        return MQ_ERR;
    struct mq_tensor *out = &outputs[0];
    if (n == 0)
        return MQ_OK;
    switch (dtype) {
    case MQ_DTYPE_FLOAT: RANGE_FILL(float, fs + (double)i * fd)
    case MQ_DTYPE_DOUBLE: RANGE_FILL(double, fs + (double)i * fd)
    case MQ_DTYPE_INT8: RANGE_FILL(int8_t, is + i * id)
    case MQ_DTYPE_UINT8: RANGE_FILL(uint8_t, is + i * id)
    case MQ_DTYPE_INT16: RANGE_FILL(int16_t, is + i * id)
    case MQ_DTYPE_UINT16: RANGE_FILL(uint16_t, is + i * id)
    case MQ_DTYPE_INT32: RANGE_FILL(int32_t, is + i * id)
    case MQ_DTYPE_UINT32: RANGE_FILL(uint32_t, is + i * id)
    case MQ_DTYPE_INT64: RANGE_FILL(int64_t, (uint64_t)is + (uint64_t)i * (uint64_t)id)
    case MQ_DTYPE_UINT64: RANGE_FILL(uint64_t, (uint64_t)is + (uint64_t)i * (uint64_t)id)
    default: {
        /* float16 / bfloat16: computed in double, rounded once. */
        for (int64_t i = 0; i < n; i++) {
            double v = fs + (double)i * fd;
            mq_cast_elements((char *)out->data + i * 2, dtype, &v, MQ_DTYPE_DOUBLE, 1);
        }
    }
    }
    return MQ_OK;
}

/* ---- EyeLike / Trilu -------------------------------------------------------------------- */

struct eyelike_state {
    int dtype;                    /* 0: the input's */
    int64_t k;
};

static int eyelike_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct eyelike_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->k = mq_attr_int(node, "k", 0);
    if (mq_attr_has(node, "dtype")) {
        int64_t dt = mq_attr_int(node, "dtype", 0);
        if (dt <= 0 || dt > 64 || !mq_cast_supported((int)dt))
            return ops_fail(node, err, "dtype %lld is not supported", (long long)dt);
        st->dtype = (int)dt;
    }
    return MQ_OK;
}

static int eyelike_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct eyelike_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (x->rank != 2)
        return ops_fail(node, err, "input must be 2-D, got rank %d", x->rank);
    int dtype = st->dtype ? st->dtype : x->dtype;
    unsigned char one[16];
    if (ops_scalar_bytes(node, dtype, 1.0, one, err) ||
        ops_alloc(node, &outputs[0], dtype, 2, x->dims, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(dtype);
    int64_t rows = x->dims[0], cols = x->dims[1];
    if (st->k >= cols || st->k <= -rows)
        return MQ_OK;
    for (int64_t i = 0; i < rows; i++) {
        int64_t j = i + st->k;
        if (j >= 0 && j < cols)
            memcpy((char *)outputs[0].data + (i * cols + j) * (int64_t)es, one, es);
    }
    return MQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

/* Shape got start/end at 15; Constant got value_* at 12. */
const struct mq_kernel mq_kernels_generators[] = {
    {"", "Shape", 1, 14, shape_prepare, shape_run, free},
    {"", "Shape", 15, 0, shape_prepare, shape_run, free},
    {"", "Size", 1, 0, NULL, size_run, NULL},
    {"", "ConstantOfShape", 9, 0, constant_of_shape_prepare, constant_of_shape_run,
     value_destroy},
    {"", "Range", 11, 0, NULL, range_run, NULL},
    {"", "Constant", 1, 11, constant_prepare, constant_run, value_destroy},
    {"", "Constant", 12, 0, constant_prepare, constant_run, value_destroy},
    {"", "EyeLike", 9, 0, eyelike_prepare, eyelike_run, free},
    {0},
};
