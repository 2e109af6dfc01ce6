/* Tensor shapes from one sample run (quant/shape_probe.h). */
#include "quant/shape_probe.h"

#include <stdlib.h>
#include <string.h>

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
