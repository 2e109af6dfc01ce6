/*
 * Unit-test helper: quantizes a built model with hand-set ranges through the
 * QDQ rewrite (select, mq_qdq_rewrite), for the quantizer's test files.
 * Included by test files only; static inline so each file takes what it uses.
 */
#ifndef MQ_TEST_QUANT_RUN_H
#define MQ_TEST_QUANT_RUN_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "calib/ranges.h"
#include "quant/qdq.h"
#include "quant/select.h"

struct range_spec {
    const char *name;
    float lo, hi;
};

static inline int compare_range(const void *a, const void *b)
{
    return strcmp(((const struct mq_tensor_range *)a)->name,
                  ((const struct mq_tensor_range *)b)->name);
}

static inline struct mq_ranges make_ranges(const struct range_spec *specs, int n)
{
    struct mq_ranges r;
    memset(&r, 0, sizeof r);
    r.method = strdup("minmax");
    r.samples = 4;
    r.n = n;
    r.items = calloc((size_t)(n ? n : 1), sizeof *r.items);
    for (int i = 0; i < n; i++) {
        r.items[i].name = strdup(specs[i].name);
        r.items[i].min = r.items[i].observed_min = specs[i].lo;
        r.items[i].max = r.items[i].observed_max = specs[i].hi;
        r.items[i].count = 100;
    }
    qsort(r.items, (size_t)n, sizeof *r.items, compare_range);
    return r;
}

struct run {
    struct mq_selection sel;
    struct mq_quant_result res;
    struct mq_ranges ranges;
    struct mq_error err;
    int rc;
};

/* Quantizes with the given op types ("Conv,Relu"), or the default ones when NULL. */
static inline void quantize_ops(Onnx__ModelProto *m, const struct range_spec *specs, int n,
                         const struct mq_quant_options *o, const char *op_types, struct run *r)
{
    struct mq_pattern_list ops = {0};
    struct mq_select_options so = {0};
    memset(r, 0, sizeof *r);
    if (op_types) {
        ck_assert_int_eq(mq_pattern_list_add(&ops, op_types, "--op-types", &r->err), MQ_OK);
        so.op_types = &ops;
    }
    ck_assert_int_eq(mq_select_nodes(m, &so, &r->sel, &r->err), MQ_OK);
    mq_pattern_list_free(&ops);
    r->ranges = make_ranges(specs, n);
    r->rc = mq_qdq_rewrite(m, &r->sel, &r->ranges, o, &r->res, &r->err);
}

static inline void quantize(Onnx__ModelProto *m, const struct range_spec *specs, int n,
                     const struct mq_quant_options *o, struct run *r)
{
    quantize_ops(m, specs, n, o, NULL, r);
}

/* The selection's choice for node `name` (it must have one). */
static inline const struct mq_node_choice *choice(const struct run *r, const char *name)
{
    for (int i = 0; i < r->sel.n; i++)
        if (strcmp(r->sel.items[i].name, name) == 0)
            return &r->sel.items[i];
    ck_abort_msg("no choice '%s'", name);
    return NULL;
}

/* The rewrite's record of tensor `name` (it must have one). */
static inline const struct mq_qtensor_record *record(const struct run *r, const char *name)
{
    for (int i = 0; i < r->res.n_tensors; i++)
        if (strcmp(r->res.tensors[i].name, name) == 0)
            return &r->res.tensors[i];
    ck_abort_msg("no record '%s'", name);
    return NULL;
}

static inline void run_free(struct run *r)
{
    if (r->rc == MQ_OK)
        mq_quant_result_free(&r->res);
    mq_selection_free(&r->sel);
    mq_ranges_free(&r->ranges);
}

#endif
