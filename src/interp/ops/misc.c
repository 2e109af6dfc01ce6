/*
 * Operators that belong to no larger family: CumSum and CumProd (running sums
 * and products along an
 * axis) and TfIdfVectorizer (n-gram counts of integer token sequences).
 *
 * CumSum's per-type code comes from a macro instantiated once per element
 * type; float16 and bfloat16 inputs go through mq_widen_run (computed in
 * float32).
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

/* ---------------------------------------------------------------- CumSum */

struct cumsum_state {
    int exclusive, reverse;
    int product; /* CumProd: running products, the exclusive start is 1 */
};

static int cumsum_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct cumsum_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int64_t exclusive = mq_attr_int(node, "exclusive", 0);
    int64_t reverse = mq_attr_int(node, "reverse", 0);
    if ((exclusive != 0 && exclusive != 1) || (reverse != 0 && reverse != 1))
        return misc_fail(node, err, "attributes 'exclusive' (%lld) and 'reverse' (%lld) must be "
                         "0 or 1", (long long)exclusive, (long long)reverse);
    s->exclusive = (int)exclusive;
    s->reverse = (int)reverse;
    s->product = strcmp(node->op_type, "CumProd") == 0;
    return MQ_OK;
}

static int cumsum_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct cumsum_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, cumsum_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    int64_t axis_value = 0;
    if (n_inputs < 2 || misc_scalar_int(node, inputs[1], "axis", &axis_value, err))
        return MQ_ERR;
    if (x->rank < 1)
        return misc_fail(node, err, "input 'x' must have rank >= 1, it is a scalar");
    int axis;
    if (mq_axis_normalize(node, axis_value, x->rank, &axis, err))
        return MQ_ERR;
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    int64_t n = x->dims[axis];
    int64_t outer = ops_product(x->dims, 0, axis), inner = ops_product(x->dims, axis + 1, x->rank);
    int64_t step = s->reverse ? -inner : inner;
    /* Signed integers accumulate in uint64 so that overflow wraps instead of being undefined. */
    switch (x->dtype) {
#define CUMSUM_CASE(DT, T, ACC)                                                                    \
    case DT: {                                                                                     \
        const T *xd = x->data;                                                                     \
        T *yd = outputs[0].data;                                                                   \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                int64_t at = o * n * inner + i + (s->reverse ? (n - 1) * inner : 0);               \
                ACC acc = s->product ? 1 : 0;                                                      \
                for (int64_t j = 0; j < n; j++, at += step) {                                      \
                    if (s->exclusive)                                                              \
                        yd[at] = (T)acc;                                                           \
                    if (s->product)                                                                \
                        acc *= (ACC)xd[at];                                                        \
                    else                                                                           \
                        acc += (ACC)xd[at];                                                        \
                    if (!s->exclusive)                                                             \
                        yd[at] = (T)acc;                                                           \
                }                                                                                  \
            }                                                                                      \
        break;                                                                                     \
    }
        CUMSUM_CASE(MQ_DTYPE_FLOAT, float, double)
        CUMSUM_CASE(MQ_DTYPE_DOUBLE, double, double)
        CUMSUM_CASE(MQ_DTYPE_INT8, int8_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT16, int16_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT32, int32_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT64, int64_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT8, uint8_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT16, uint16_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT32, uint32_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT64, uint64_t, uint64_t)
#undef CUMSUM_CASE
    default:
        return misc_type_error(node, "input 'x'", x->dtype, err);
    }
    return MQ_OK;
}

/* --------------------------------------------------------- TfIdfVectorizer */

enum { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF };
#define TFIDF_MAX_N 64

/*
 * The pool holds the n-grams of each length n as consecutive runs of n
 * ids.  For each length the n-grams are kept sorted (by[n]) so that a
 * candidate n-gram from the input is found by binary search.
 */
struct tfidf_state {
    int mode;
    int64_t min_n, max_n, max_skip;
    int64_t out_size;
    const int64_t *pool;
    int64_t n_pool;
    int64_t *ngram_start;    /* per n-gram: offset in pool */
    int64_t *ngram_out;      /* per n-gram: output index */
    int64_t *len_begin;      /* per length n (1..max_n): first n-gram number */
    int64_t *len_end;
    int64_t *sorted;         /* n-gram numbers, sorted within each length */
    const float *weights;
    int64_t n_ngrams;
};

static void tfidf_destroy(void *p)
{
    struct tfidf_state *s = p;
    if (!s)
        return;
    free(s->ngram_start);
    free(s->ngram_out);
    free(s->len_begin);
    free(s->len_end);
    free(s->sorted);
    free(s);
}

static int tfidf_cmp_ngram(const int64_t *pool, int64_t a_off, const int64_t *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (pool[a_off + i] < b[i])
            return -1;
        if (pool[a_off + i] > b[i])
            return 1;
    }
    return 0;
}

static int tfidf_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct tfidf_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    char buf[16];
    const char *mode = mq_attr_string(node, "mode", NULL, buf, sizeof buf);
    if (!mode)
        return misc_fail(node, err, "attribute 'mode' is required");
    if (strcmp(mode, "TF") == 0)
        s->mode = TFIDF_TF;
    else if (strcmp(mode, "IDF") == 0)
        s->mode = TFIDF_IDF;
    else if (strcmp(mode, "TFIDF") == 0)
        s->mode = TFIDF_TFIDF;
    else
        return misc_fail(node, err, "attribute 'mode' is '%s', expected TF, IDF or TFIDF", mode);
    s->min_n = mq_attr_int(node, "min_gram_length", 0);
    s->max_n = mq_attr_int(node, "max_gram_length", 0);
    s->max_skip = mq_attr_int(node, "max_skip_count", 0);
    if (s->min_n < 1 || s->max_n < s->min_n || s->max_n > TFIDF_MAX_N || s->max_skip < 0)
        return misc_fail(node, err, "need 1 <= min_gram_length (%lld) <= max_gram_length (%lld) "
                         "<= %d and max_skip_count (%lld) >= 0", (long long)s->min_n,
                         (long long)s->max_n, TFIDF_MAX_N, (long long)s->max_skip);
    if (mq_attr_has(node, "pool_strings"))
        return misc_fail(node, err, "string pools ('pool_strings') are not supported: the "
                         "interpreter holds no string tensors");
    const int64_t *counts, *indexes;
    int64_t n_counts = mq_attr_ints(node, "ngram_counts", &counts);
    int64_t n_indexes = mq_attr_ints(node, "ngram_indexes", &indexes);
    s->n_pool = mq_attr_ints(node, "pool_int64s", &s->pool);
    if (n_counts < 0 || n_indexes < 0 || s->n_pool < 0)
        return misc_fail(node, err, "attributes 'ngram_counts', 'ngram_indexes' and "
                         "'pool_int64s' are required");
    if (n_counts < s->max_n)
        return misc_fail(node, err, "attribute 'ngram_counts' has %lld entries, fewer than "
                         "max_gram_length %lld", (long long)n_counts, (long long)s->max_n);
    /* Count the n-grams of each length from the pool layout. */
    s->len_begin = calloc((size_t)n_counts + 1, sizeof(int64_t));
    s->len_end = calloc((size_t)n_counts + 1, sizeof(int64_t));
    if (!s->len_begin || !s->len_end)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int64_t total = 0;
    for (int64_t len = 1; len <= n_counts; len++) {
        int64_t from = counts[len - 1];
        int64_t to = len < n_counts ? counts[len] : s->n_pool;
        if (from < 0 || to < from || to > s->n_pool || (to - from) % len != 0)
            return misc_fail(node, err, "attribute 'ngram_counts' entry %lld (%lld) does not "
                             "split 'pool_int64s' (%lld ids) into %lld-grams",
                             (long long)(len - 1), (long long)from, (long long)s->n_pool,
                             (long long)len);
        s->len_begin[len] = total;
        total += (to - from) / len;
        s->len_end[len] = total;
    }
    if (n_indexes != total)
        return misc_fail(node, err, "attribute 'ngram_indexes' has %lld entries, expected one "
                         "per n-gram in the pool (%lld)", (long long)n_indexes, (long long)total);
    s->n_ngrams = total;
    s->ngram_start = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    s->ngram_out = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    s->sorted = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!s->ngram_start || !s->ngram_out || !s->sorted)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    s->out_size = 0;
    for (int64_t len = 1; len <= n_counts; len++) {
        for (int64_t g = s->len_begin[len]; g < s->len_end[len]; g++) {
            s->ngram_start[g] = counts[len - 1] + (g - s->len_begin[len]) * len;
            s->ngram_out[g] = indexes[g];
            if (indexes[g] < 0)
                return misc_fail(node, err, "attribute 'ngram_indexes' has negative entry %lld",
                                 (long long)indexes[g]);
            if (indexes[g] + 1 > s->out_size)
                s->out_size = indexes[g] + 1;
            /* Insertion into the sorted list of this length (pools are small). */
            int64_t at = g;
            while (at > s->len_begin[len] &&
                   tfidf_cmp_ngram(s->pool, s->ngram_start[s->sorted[at - 1]],
                                   s->pool + s->ngram_start[g], len) > 0) {
                s->sorted[at] = s->sorted[at - 1];
                at--;
            }
            s->sorted[at] = g;
        }
    }
    int64_t n_weights = mq_attr_floats(node, "weights", &s->weights);
    if (n_weights >= 0 && n_weights != total)
        return misc_fail(node, err, "attribute 'weights' has %lld entries, expected %lld",
                         (long long)n_weights, (long long)total);
    if (n_weights < 0)
        s->weights = NULL;
    return MQ_OK;
}

/* The n-gram number of ids[0], ids[step], ... (len ids), or -1 when not in the pool. */
static int64_t tfidf_find(const struct tfidf_state *s, const int64_t *ids, int64_t len)
{
    int64_t lo = s->len_begin[len], hi = s->len_end[len];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = tfidf_cmp_ngram(s->pool, s->ngram_start[s->sorted[mid]], ids, len);
        if (c == 0)
            return s->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int tfidf_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct tfidf_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    if (x->dtype != MQ_DTYPE_INT32 && x->dtype != MQ_DTYPE_INT64)
        return misc_type_error(node, "input 'X'", x->dtype, err);
    if (x->rank != 1 && x->rank != 2)
        return misc_fail(node, err, "input 'X' must have shape [C] or [N, C], got rank %d",
                         x->rank);
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, cols = x->dims[x->rank - 1];
    int64_t dims[2] = {rows, s->out_size};
    if (x->rank == 1)
        dims[0] = s->out_size;
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_FLOAT, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t *counts = mq_scratch_alloc(node, s->n_ngrams + cols, sizeof(int64_t), err);
    if (!counts)
        return MQ_ERR;
    int64_t *row = counts + s->n_ngrams;
    float *y = outputs[0].data;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = mq_tensor_get_int64(x, r * cols + c);
        memset(counts, 0, sizeof(int64_t) * (size_t)s->n_ngrams);
        int64_t ids[TFIDF_MAX_N];
        for (int64_t len = s->min_n; len <= s->max_n; len++) {
            if (s->len_begin[len] == s->len_end[len])
                continue;
            /* Unigrams have no gaps to skip: count them once. */
            int64_t max_skip = len == 1 ? 0 : s->max_skip;
            for (int64_t skip = 0; skip <= max_skip; skip++) {
                int64_t step = skip + 1;
                for (int64_t start = 0; start + (len - 1) * step < cols; start++) {
                    for (int64_t i = 0; i < len; i++)
                        ids[i] = row[start + i * step];
                    int64_t g = tfidf_find(s, ids, len);
                    if (g >= 0)
                        counts[g]++;
                }
            }
        }
        float *yr = y + r * s->out_size;
        for (int64_t g = 0; g < s->n_ngrams; g++) {
            if (!counts[g])
                continue;
            float w = s->weights ? s->weights[g] : 1.0f;
            float v = s->mode == TFIDF_TF    ? (float)counts[g]
                      : s->mode == TFIDF_IDF ? w
                                             : (float)counts[g] * w;
            yr[s->ngram_out[g]] = v;
        }
    }
    mq_scratch_free(counts, s->n_ngrams + cols, sizeof(int64_t));
    return MQ_OK;
}

const struct mq_kernel mq_kernels_misc[] = {
    /* 14 added float16 and bfloat16. */
    {"", "CumSum", 11, 13, cumsum_prepare, cumsum_run, free},
    {"", "CumSum", 14, 0, cumsum_prepare, cumsum_run, free},
    {"", "CumProd", 26, 0, cumsum_prepare, cumsum_run, free},
    {"", "TfIdfVectorizer", 9, 0, tfidf_prepare, tfidf_run, tfidf_destroy},
    {0},
};
