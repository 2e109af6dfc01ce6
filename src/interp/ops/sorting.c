/*
 * Ops built on one stable sort of indices by value: TopK, Unique and
 * NonMaxSuppression (boxes taken in descending score order).
 *
 * Per-type code comes from macros instantiated once per element type;
 * float16 and bfloat16 inputs go through mq_widen_run (computed in float32).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/misc_common.h"
#include "interp/ops/scratch.h"
#include "interp/ops/shape_util.h"
#include "interp/ops/widen.h"
#include "core/tensor.h"

/*
 * The passes of a stable bottom-up merge sort of perm[0..n) (tmp: n more entries).  BEFORE is an
 * expression of `right` and `left`, two entries of perm from the right and the left run: nonzero
 * when right must come first.  Ties keep the left one first, so the sort is stable.
 */
#define MERGE_SORT_PERM(perm, tmp, n, BEFORE)                                                      \
    do {                                                                                           \
        int64_t *src = (perm), *dst = (tmp);                                                       \
        for (int64_t width = 1; width < (n); width *= 2) {                                         \
            for (int64_t lo = 0; lo < (n); lo += 2 * width) {                                      \
                int64_t mid = lo + width < (n) ? lo + width : (n);                                 \
                int64_t hi = lo + 2 * width < (n) ? lo + 2 * width : (n);                          \
                int64_t i = lo, j = mid, o = lo;                                                   \
                while (i < mid && j < hi) {                                                        \
                    int64_t right = src[j], left = src[i];                                         \
                    dst[o++] = (BEFORE) ? src[j++] : src[i++];                                     \
                }                                                                                  \
                while (i < mid)                                                                    \
                    dst[o++] = src[i++];                                                           \
                while (j < hi)                                                                     \
                    dst[o++] = src[j++];                                                           \
            }                                                                                      \
            int64_t *swap = src;                                                                   \
            src = dst;                                                                             \
            dst = swap;                                                                            \
        }                                                                                          \
        if (src != (perm))                                                                         \
            memcpy((perm), src, (size_t)(n) * sizeof *(perm));                                     \
    } while (0)

/*
 * Stable bottom-up merge sort of perm[0..n) by keys[perm[i]].  NaN sorts as
 * the largest value (numpy's order), so it comes first when descending.
 * Equal keys keep their order: callers that start from perm[i] = i get ties
 * broken by the lower index, as TopK and NonMaxSuppression require.
 */
#define DEFINE_SORT_PERM(DT, T, ISNAN)                                                             \
    static int sort_before_##T(const T *keys, int desc, int64_t right, int64_t left)               \
    {                                                                                              \
        T a = keys[right], b = keys[left];                                                         \
        return desc ? (a > b || (ISNAN(a) && !ISNAN(b))) : (a < b || (ISNAN(b) && !ISNAN(a)));     \
    }                                                                                              \
    static void sort_perm_##T(const T *keys, int64_t *perm, int64_t *tmp, int64_t n, int desc)     \
    {                                                                                              \
        MERGE_SORT_PERM(perm, tmp, n, sort_before_##T(keys, desc, right, left));                   \
    }
MISC_NUMERIC_TYPES(DEFINE_SORT_PERM)

/* ------------------------------------------------------------------ TopK */

struct topk_state {
    int k_from_attr; /* opset 1-9: k is an attribute */
    int64_t k;
    int64_t axis;
    int largest;
};

static int topk_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct topk_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->axis = mq_attr_int(node, "axis", -1);
    s->largest = 1;
    if (node->opset < 10) {
        if (!mq_attr_has(node, "k"))
            return misc_fail(node, err, "attribute 'k' is required before opset 10");
        s->k_from_attr = 1;
        s->k = mq_attr_int(node, "k", 0);
        if (s->k < 0)
            return misc_fail(node, err, "attribute 'k' is %lld, expected >= 0", (long long)s->k);
    }
    if (node->opset >= 11) {
        int64_t largest = mq_attr_int(node, "largest", 1);
        int64_t sorted = mq_attr_int(node, "sorted", 1);
        if (largest != 0 && largest != 1)
            return misc_fail(node, err, "attribute 'largest' is %lld, expected 0 or 1",
                             (long long)largest);
        /* sorted=0 leaves the order unspecified; sorted output satisfies it. */
        if (sorted != 0 && sorted != 1)
            return misc_fail(node, err, "attribute 'sorted' is %lld, expected 0 or 1",
                             (long long)sorted);
        s->largest = (int)largest;
    }
    return MQ_OK;
}

static int topk_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct topk_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, topk_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    if (n_outputs < 2)
        return misc_fail(node, err, "expected 2 outputs (Values, Indices), got %d", n_outputs);
    if (x->rank < 1)
        return misc_fail(node, err, "input 'X' must have rank >= 1, it is a scalar");
    int axis;
    if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
        return MQ_ERR;
    int64_t k = s->k;
    if (!s->k_from_attr) {
        if (n_inputs < 2 || misc_scalar_int(node, inputs[1], "K", &k, err))
            return MQ_ERR;
    }
    int64_t n = x->dims[axis];
    if (k < 0 || k > n)
        return misc_fail(node, err, "K is %lld, expected a value in [0, %lld] (the size of axis "
                         "%d)", (long long)k, (long long)n, axis);
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, dims, node->name, err) ||
        mq_tensor_alloc(&outputs[1], MQ_DTYPE_INT64, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t outer = ops_product(x->dims, 0, axis), inner = ops_product(x->dims, axis + 1, x->rank);
    if (outer * inner == 0 || k == 0)
        return MQ_OK;
    void *keys = mq_scratch_alloc(node, n, 8, err);
    int64_t *perm = keys ? mq_scratch_alloc(node, 2 * n, sizeof(int64_t), err) : NULL;
    if (!perm) {
        mq_scratch_free(keys, n, 8);
        return MQ_ERR;
    }
    int64_t *tmp = perm + n;
    int64_t *ix = outputs[1].data;
    int rc = MQ_OK;
    switch (x->dtype) {
#define TOPK_CASE(DT, T, ISNAN)                                                                    \
    case DT: {                                                                                     \
        const T *xd = x->data;                                                                     \
        T *vd = outputs[0].data, *kd = keys;                                                       \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                for (int64_t j = 0; j < n; j++) {                                                  \
                    kd[j] = xd[(o * n + j) * inner + i];                                           \
                    perm[j] = j;                                                                   \
                }                                                                                  \
                sort_perm_##T(kd, perm, tmp, n, s->largest);                                       \
                for (int64_t j = 0; j < k; j++) {                                                  \
                    vd[(o * k + j) * inner + i] = kd[perm[j]];                                     \
                    ix[(o * k + j) * inner + i] = perm[j];                                         \
                }                                                                                  \
            }                                                                                      \
        break;                                                                                     \
    }
        MISC_NUMERIC_TYPES(TOPK_CASE)
#undef TOPK_CASE
    default:
        rc = misc_type_error(node, "input 'X'", x->dtype, err);
    }
    mq_scratch_free(perm, 2 * n, sizeof(int64_t));
    mq_scratch_free(keys, n, 8);
    return rc;
}

/* ---------------------------------------------------------------- Unique */

struct unique_state {
    int has_axis;
    int64_t axis;
    int sorted;
};

static int unique_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct unique_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->has_axis = mq_attr_has(node, "axis");
    s->axis = mq_attr_int(node, "axis", 0);
    int64_t sorted = mq_attr_int(node, "sorted", 1);
    if (sorted != 0 && sorted != 1)
        return misc_fail(node, err, "attribute 'sorted' is %lld, expected 0 or 1",
                         (long long)sorted);
    s->sorted = (int)sorted;
    return MQ_OK;
}

/*
 * Slices j of x along the axis (elements (o, j, i) for every outer o and
 * inner i) compared lexicographically, the order numpy.unique uses.
 */
#define DEFINE_UNIQUE_SORT(DT, T, ISNAN)                                                           \
    static int unique_cmp_##T(const T *x, int64_t outer, int64_t n, int64_t inner, int64_t a,      \
                              int64_t b)                                                           \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *pa = x + (o * n + a) * inner, *pb = x + (o * n + b) * inner;                  \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                if (pa[i] < pb[i])                                                                 \
                    return -1;                                                                     \
                if (pa[i] > pb[i])                                                                 \
                    return 1;                                                                      \
            }                                                                                      \
        }                                                                                          \
        return 0;                                                                                  \
    }                                                                                              \
    static void unique_sort_##T(const T *x, int64_t outer, int64_t n, int64_t inner,               \
                                int64_t *perm, int64_t *tmp, int64_t *group)                       \
    {                                                                                              \
        MERGE_SORT_PERM(perm, tmp, n, unique_cmp_##T(x, outer, n, inner, right, left) < 0);        \
        for (int64_t r = 0; r < n; r++)                                                            \
            group[r] = r > 0 && unique_cmp_##T(x, outer, n, inner, perm[r - 1], perm[r]) == 0     \
                           ? group[r - 1]                                                          \
                           : r;                                                                    \
    }
MISC_NUMERIC_TYPES(DEFINE_UNIQUE_SORT)

static int unique_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct unique_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, unique_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    int axis = 0;
    int64_t outer = 1, n = x->count, inner = 1;
    if (s->has_axis) {
        if (x->rank < 1)
            return misc_fail(node, err, "attribute 'axis' needs an input of rank >= 1");
        if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
            return MQ_ERR;
        outer = ops_product(x->dims, 0, axis);
        n = x->dims[axis];
        inner = ops_product(x->dims, axis + 1, x->rank);
    }
    /* Sort slice indices; group[r] = first sorted position of r's run of equal slices. */
    int64_t *buf = mq_scratch_alloc(node, 3 * n, sizeof(int64_t), err);
    if (!buf)
        return MQ_ERR;
    int64_t *perm = buf, *tmp = buf + n, *group = buf + 2 * n;
    for (int64_t j = 0; j < n; j++)
        perm[j] = j;
    int dtype = x->dtype == MQ_DTYPE_BOOL ? MQ_DTYPE_UINT8 : x->dtype;
    switch (dtype) {
#define UNIQUE_CASE(DT, T, ISNAN)                                                                  \
    case DT:                                                                                       \
        unique_sort_##T(x->data, outer, n, inner, perm, tmp, group);                               \
        break;
        MISC_NUMERIC_TYPES(UNIQUE_CASE)
#undef UNIQUE_CASE
    default:
        mq_scratch_free(buf, 3 * n, sizeof(int64_t));
        return misc_type_error(node, "input 'X'", x->dtype, err);
    }
    /*
     * Each run of equal slices becomes one unique entry.  Its first
     * occurrence is the run's first member (the sort is stable).  With
     * sorted=0 the entries are ordered by first occurrence instead.
     */
    int64_t n_unique = 0;
    for (int64_t r = 0; r < n; r++)
        if (group[r] == r)
            n_unique++;
    int64_t *ubuf = mq_scratch_alloc(node, 4 * n_unique + n, sizeof(int64_t), err);
    if (!ubuf) {
        mq_scratch_free(buf, 3 * n, sizeof(int64_t));
        return MQ_ERR;
    }
    int64_t *first = ubuf, *count = ubuf + n_unique, *order = ubuf + 2 * n_unique;
    int64_t *rank_of_run = ubuf + 3 * n_unique, *entry_of = ubuf + 4 * n_unique;
    int64_t u = -1;
    for (int64_t r = 0; r < n; r++) {
        if (group[r] == r) {
            u++;
            first[u] = perm[r];
            count[u] = 0;
        }
        count[u]++;
        entry_of[perm[r]] = u; /* run number for now */
    }
    for (int64_t i = 0; i < n_unique; i++)
        order[i] = i;
    if (!s->sorted) {
        /* first[] values are distinct, so any stable sort gives the same order. */
        int64_t *tmp2 = tmp; /* n >= n_unique entries, free after the sort above */
        sort_perm_int64_t(first, order, tmp2, n_unique, 0);
    }
    for (int64_t i = 0; i < n_unique; i++)
        rank_of_run[order[i]] = i;

    int rc = MQ_OK;
    int64_t ydims[MQ_MAX_RANK];
    int yrank = s->has_axis ? x->rank : 1;
    if (s->has_axis) {
        memcpy(ydims, x->dims, sizeof ydims);
        ydims[axis] = n_unique;
    } else {
        ydims[0] = n_unique;
    }
    int64_t udims[1] = {n_unique}, ndims[1] = {n};
    const int64_t *out_dims[4] = {ydims, udims, ndims, udims};
    for (int i = 0; i < n_outputs && i < 4 && !rc; i++)
        rc = mq_tensor_alloc(&outputs[i], i ? MQ_DTYPE_INT64 : x->dtype, i ? 1 : yrank,
                             out_dims[i], node->name, err);
    if (!rc) {
        size_t esz = mq_dtype_size(x->dtype);
        const char *src = x->data;
        char *dst = outputs[0].data;
        for (int64_t i = 0; i < n_unique; i++) {
            int64_t run = order[i];
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)((o * n_unique + i) * inner) * esz,
                       src + (size_t)((o * n + first[run]) * inner) * esz, (size_t)inner * esz);
            if (n_outputs > 1)
                ((int64_t *)outputs[1].data)[i] = first[run];
            if (n_outputs > 3)
                ((int64_t *)outputs[3].data)[i] = count[run];
        }
        if (n_outputs > 2)
            for (int64_t j = 0; j < n; j++)
                ((int64_t *)outputs[2].data)[j] = rank_of_run[entry_of[j]];
    }
    mq_scratch_free(ubuf, 4 * n_unique + n, sizeof(int64_t));
    mq_scratch_free(buf, 3 * n, sizeof(int64_t));
    return rc;
}

/* ----------------------------------------------------- NonMaxSuppression */

struct nms_state {
    int center_point_box;
};

static int nms_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct nms_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int64_t c = mq_attr_int(node, "center_point_box", 0);
    if (c != 0 && c != 1)
        return misc_fail(node, err, "attribute 'center_point_box' is %lld, expected 0 or 1",
                         (long long)c);
    s->center_point_box = (int)c;
    return MQ_OK;
}

/* Corners as (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2, whatever the input format. */
static void nms_corners(const float *b, int center, float *c)
{
    if (center) {
        float xc = b[0], yc = b[1], w = b[2], h = b[3];
        c[0] = yc - h / 2;
        c[1] = xc - w / 2;
        c[2] = yc + h / 2;
        c[3] = xc + w / 2;
    } else {
        c[0] = fminf(b[0], b[2]);
        c[1] = fminf(b[1], b[3]);
        c[2] = fmaxf(b[0], b[2]);
        c[3] = fmaxf(b[1], b[3]);
    }
}

static int nms_suppresses(const float *a, const float *b, float iou_threshold)
{
    float ih = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
    float iw = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (ih <= 0 || iw <= 0)
        return 0;
    float inter = ih * iw;
    float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    float uni = area_a + area_b - inter;
    if (area_a <= 0 || area_b <= 0 || uni <= 0)
        return 0;
    return inter / uni > iou_threshold;
}

static int nms_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct nms_state *s = node->state;
    const struct mq_tensor *boxes = inputs[0], *scores = n_inputs > 1 ? inputs[1] : NULL;
    if (!scores)
        return misc_fail(node, err, "input 'scores' is missing");
    if (boxes->dtype != MQ_DTYPE_FLOAT || scores->dtype != MQ_DTYPE_FLOAT)
        return misc_fail(node, err, "inputs 'boxes' and 'scores' must be float32, got %s and %s",
                         mq_dtype_name(boxes->dtype), mq_dtype_name(scores->dtype));
    if (boxes->rank != 3 || boxes->dims[2] != 4)
        return misc_fail(node, err, "input 'boxes' must have shape [batches, boxes, 4]");
    if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] ||
        scores->dims[2] != boxes->dims[1])
        return misc_fail(node, err, "input 'scores' must have shape [batches, classes, boxes] "
                         "matching 'boxes'");
    int64_t max_out = 0;
    double iou = 0.0, score_threshold = 0.0;
    int has_score_threshold = n_inputs > 4 && inputs[4];
    if (n_inputs > 2 && inputs[2] &&
        misc_scalar_int(node, inputs[2], "max_output_boxes_per_class", &max_out, err))
        return MQ_ERR;
    if (n_inputs > 3 && inputs[3] &&
        misc_scalar_float(node, inputs[3], "iou_threshold", &iou, err))
        return MQ_ERR;
    if (has_score_threshold &&
        misc_scalar_float(node, inputs[4], "score_threshold", &score_threshold, err))
        return MQ_ERR;
    if (iou < 0.0 || iou > 1.0)
        return misc_fail(node, err, "iou_threshold is %g, expected a value in [0, 1]", iou);
    int64_t n_batch = boxes->dims[0], n_class = scores->dims[1], n_box = boxes->dims[1];
    if (max_out < 0)
        max_out = 0;
    if (max_out > n_box)
        max_out = n_box;
    int64_t bound = n_batch * n_class * max_out;
    int64_t *sel = mq_scratch_alloc(node, 3 * bound, sizeof(int64_t), err);
    int64_t *perm = sel ? mq_scratch_alloc(node, 3 * n_box, sizeof(int64_t), err) : NULL;
    float *corners = perm ? mq_scratch_alloc(node, 4 * n_box, sizeof(float), err) : NULL;
    if (!corners) {
        mq_scratch_free(perm, 3 * n_box, sizeof(int64_t));
        mq_scratch_free(sel, 3 * bound, sizeof(int64_t));
        return MQ_ERR;
    }
    int64_t *tmp = perm + n_box, *kept = perm + 2 * n_box;
    int64_t n_sel = 0;
    const float *bd = boxes->data, *sd = scores->data;
    for (int64_t b = 0; max_out > 0 && b < n_batch; b++) {
        for (int64_t i = 0; i < n_box; i++)
            nms_corners(bd + (b * n_box + i) * 4, s->center_point_box, corners + i * 4);
        for (int64_t c = 0; c < n_class; c++) {
            const float *cs = sd + (b * n_class + c) * n_box;
            int64_t n_cand = 0;
            for (int64_t i = 0; i < n_box; i++)
                if (!has_score_threshold || cs[i] > (float)score_threshold)
                    perm[n_cand++] = i;
            /* Highest score first; equal scores keep the lower box index first. */
            sort_perm_float(cs, perm, tmp, n_cand, 1);
            int64_t n_kept = 0;
            for (int64_t r = 0; r < n_cand && n_kept < max_out; r++) {
                int64_t i = perm[r];
                int keep = 1;
                for (int64_t q = 0; q < n_kept && keep; q++)
                    if (nms_suppresses(corners + kept[q] * 4, corners + i * 4, (float)iou))
                        keep = 0;
                if (!keep)
                    continue;
                kept[n_kept++] = i;
                sel[n_sel * 3] = b;
                sel[n_sel * 3 + 1] = c;
                sel[n_sel * 3 + 2] = i;
                n_sel++;
            }
        }
    }
    int64_t dims[2] = {n_sel, 3};
    int rc = mq_tensor_alloc(&outputs[0], MQ_DTYPE_INT64, 2, dims, node->name, err);
    if (!rc && n_sel)
        memcpy(outputs[0].data, sel, (size_t)n_sel * 3 * sizeof(int64_t));
    mq_scratch_free(corners, 4 * n_box, sizeof(float));
    mq_scratch_free(perm, 3 * n_box, sizeof(int64_t));
    mq_scratch_free(sel, 3 * bound, sizeof(int64_t));
    return rc;
}

const struct mq_kernel mq_kernels_sorting[] = {
    /* 1-9: k attribute; 10: K input; 11: largest, sorted, every numeric type. */
    {"", "TopK", 1, 9, topk_prepare, topk_run, free},
    {"", "TopK", 10, 10, topk_prepare, topk_run, free},
    {"", "TopK", 11, 0, topk_prepare, topk_run, free},
    {"", "Unique", 11, 0, unique_prepare, unique_run, free},
    /* 11 only clarified the spec; the computation is the same. */
    {"", "NonMaxSuppression", 10, 10, nms_prepare, nms_run, free},
    {"", "NonMaxSuppression", 11, 0, nms_prepare, nms_run, free},
    {0},
};
