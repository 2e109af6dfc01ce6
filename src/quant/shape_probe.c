/* Tensor shapes from one sample run (quant/shape_probe.h). */
#include "quant/shape_probe.h"

#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#include "calib/driver.h"
#include "core/tensor.h"
#include "interp/plan.h"
#include "util/strmap.h"

struct probed_shape {
    int rank;
    int64_t dims[MQ_MAX_RANK];
};

struct mq_shape_probe {
    struct mq_strmap *index; /* tensor name -> index into shapes */
    struct probed_shape *shapes;
    int n, cap;
};

static int record(struct mq_shape_probe *p, const char *name, const struct mq_tensor *value)
{
    if (mq_strmap_get(p->index, name) >= 0)
        return MQ_OK; /* a loop body's tensor: its first shape is as good as any */
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        struct probed_shape *grown = realloc(p->shapes, (size_t)cap * sizeof *grown);
        if (!grown)
            return MQ_ERR;
        p->shapes = grown;
        p->cap = cap;
    }
    struct probed_shape *s = &p->shapes[p->n];
    s->rank = value->rank;
    memcpy(s->dims, value->dims, sizeof s->dims);
    if (mq_strmap_put(p->index, name, p->n))
        return MQ_ERR;
    p->n++;
    return MQ_OK;
}

static int observe(void *user, const struct mq_kernel_node *producer, const char *name,
                   const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    if (record(user, name, value))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory recording tensor shapes");
    return MQ_OK;
}

/* Elements a declared input may have for the run on zeros (a corrupt file may claim more). */
#define DECLARED_MAX_ELEMENTS ((int64_t)1 << 24)

/*
 * Zero-filled inputs of the shapes and types the graph declares; 0 (nothing allocated) when
 * some input has a dimension it does not fix, a type that is not numeric, or is too large.
 */
static int declared_inputs(const struct mq_plan *plan, struct mq_tensor *inputs,
                           struct mq_error *err)
{
    int n = mq_plan_input_count(plan);
    for (int k = 0; k < n; k++) {
        const Onnx__ValueInfoProto *info = mq_plan_input(plan, k);
        const Onnx__TypeProto *type = info ? info->type : NULL;
        const Onnx__TypeProto__Tensor *tt =
            type && type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? type->tensor_type
                                                                           : NULL;
        int dtype = mq_value_info_dtype(info);
        int ok = tt && tt->shape && tt->shape->n_dim <= MQ_MAX_RANK && dtype &&
                 dtype != MQ_DTYPE_STRING;
        int64_t dims[MQ_MAX_RANK], count = 1;
        for (size_t d = 0; ok && d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            ok = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                 dim->dim_value > 0 && dim->dim_value <= DECLARED_MAX_ELEMENTS / count;
            if (ok) {
                dims[d] = dim->dim_value;
                count *= dim->dim_value;
            }
        }
        if (ok && mq_tensor_alloc(&inputs[k], dtype, (int)tt->shape->n_dim, dims,
                                  mq_str(info->name), err) == MQ_OK)
            continue;
        for (int j = 0; j < k; j++)
            mq_tensor_free(&inputs[j]);
        return 0;
    }
    return 1;
}

/* The run on declared shapes: *ran 0 when they are not all fixed or the run failed. */
static int run_declared(const struct mq_plan *plan, struct mq_shape_probe *p, int *ran,
                        struct mq_error *err)
{
    *ran = 0;
    int n_in = mq_plan_input_count(plan), n_out = mq_plan_output_count(plan);
    struct mq_tensor *inputs = calloc((size_t)n_in + 1, sizeof *inputs);
    struct mq_tensor *outputs = calloc((size_t)n_out + 1, sizeof *outputs);
    if (!inputs || !outputs) {
        free(inputs);
        free(outputs);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    if (declared_inputs(plan, inputs, err)) {
        struct mq_run_options run = {observe, p};
        struct mq_error ignored;
        /* zeros can fail where samples do not (a division by the input's norm is fine, a
           shape read from the input is not): then there are no shapes, as without samples */
        *ran = mq_plan_run(plan, inputs, n_in, outputs, n_out, &run, &ignored) == MQ_OK;
        for (int k = 0; k < n_in; k++)
            mq_tensor_free(&inputs[k]);
        for (int k = 0; k < n_out; k++)
            mq_tensor_free(&outputs[k]);
    }
    free(inputs);
    free(outputs);
    return MQ_OK;
}

int mq_shape_probe_run(const struct mq_model *model, const char *calib_dir,
                       const struct mq_calib_open_options *open, struct mq_shape_probe **out,
                       struct mq_error *err)
{
    *out = NULL;
    struct mq_shape_probe *p = calloc(1, sizeof *p);
    if (!p || !(p->index = mq_strmap_new())) {
        free(p);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    if (!calib_dir) {
        struct mq_plan *plan = NULL;
        int ran = 0;
        int rc = mq_plan_build(model, &plan, err);
        if (rc == MQ_OK)
            rc = run_declared(plan, p, &ran, err);
        mq_plan_free(plan);
        if (rc == MQ_OK && ran)
            *out = p;
        else
            mq_shape_probe_free(p);
        return rc;
    }
    struct mq_calib_open_options first = {1, 0, 0, open ? open->preprocess : NULL};
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    int rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan_with(calib_dir, plan, &first, &source, err);
    void *workers[1] = {p};
    struct mq_sample_pass pass = {
        .plan = plan, .source = source, .jobs = 1, .workers = workers, .observe = observe,
        .label = "learning tensor shapes: sample",
    };
    int64_t done;
    if (rc == MQ_OK)
        rc = mq_sample_pass_run(&pass, &done, err);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    if (rc) {
        mq_shape_probe_free(p);
        return rc;
    }
    *out = p;
    return MQ_OK;
}

static int probed_shape_of(void *user, const char *name, int64_t *dims)
{
    const struct mq_shape_probe *p = user;
    if (!p)
        return -1; /* no probe: no shape known */
    int k = mq_strmap_get(p->index, name);
    if (k < 0)
        return -1;
    memcpy(dims, p->shapes[k].dims, sizeof p->shapes[k].dims);
    return p->shapes[k].rank;
}

struct mq_opset_hints mq_shape_probe_hints(struct mq_shape_probe *probe)
{
    struct mq_opset_hints h = {probed_shape_of, probe};
    return h;
}

void mq_shape_probe_free(struct mq_shape_probe *probe)
{
    if (!probe)
        return;
    mq_strmap_free(probe->index);
    free(probe->shapes);
    free(probe);
}
