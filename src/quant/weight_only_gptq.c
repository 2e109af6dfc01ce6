/*
 * GPTQ for --weight-only --weight-only-method gptq (Frantar et al., 2022), on B [K, N] of
 * y = x B: the rows of B (input channels) are rounded in order; the error of row i, divided
 * by U[i][i], is taken off the rows after it in proportion to U[i][j], where U is the upper
 * Cholesky factor of H^-1 and H = X^T X (+1 % damping) the second moments of the MatMul's
 * input on the calibration samples.  A block's scale and zero point are chosen from its rows
 * as they stand when the first of them is reached.  Rows the samples never excite (H[i][i]
 * = 0) carry no information and are rounded as they are.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "interp/plan.h"
#include "quant/gptq.h"
#include "quant/weight_only.h"

/* ---- second moments of the MatMul inputs over the samples ------------------------------- */

struct hessian_pass {
    char **names;
    const int64_t *k;
    int n;
    double **h;
    int64_t *rows;
};

static int observe(void *user, const struct mq_kernel_node *producer, const char *tensor_name,
                   const struct mq_tensor *value, struct mq_error *err)
{
    struct hessian_pass *p = user;
    (void)producer;
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->names[i], tensor_name) != 0)
            continue;
        int64_t k = p->k[i];
        if (value->dtype != MQ_DTYPE_FLOAT || value->rank < 1 || value->dims[value->rank - 1] != k)
            return MQ_OK;
        if (!p->h[i]) {
            p->h[i] = calloc((size_t)(k * k), sizeof(double));
            if (!p->h[i])
                return mq_error_code(err, MQ_ERR_MEMORY, "GPTQ: out of memory for a %lldx%lld "
                                     "matrix", (long long)k, (long long)k);
        }
        const float *x = value->data;
        double *h = p->h[i];
        int64_t rows = value->count / k;
        for (int64_t r = 0; r < rows; r++) {
            const float *row = x + r * k;
            for (int64_t a = 0; a < k; a++) {
                double xa = row[a];
                if (xa == 0.0)
                    continue;
                for (int64_t b = a; b < k; b++)
                    h[a * k + b] += xa * row[b];
            }
        }
        p->rows[i] += rows;
        /* several sites may read the same tensor: each gets its own copy */
    }
    return MQ_OK;
}

int mq_weight_only_hessians(struct mq_model *model, const char *calib, long long limit,
                            char **names, const int64_t *k, int n, double **h, int64_t *rows,
                            struct mq_error *err)
{
    if (!calib)
        return mq_error_set(err, "GPTQ needs calibration samples (--calib DIR)");
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    int rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan(calib, plan, limit, &source, err);
    struct hessian_pass state = {names, k, n, h, rows};
    void *workers[1] = {&state};
    struct mq_sample_pass pass = {0};
    pass.plan = plan;
    pass.source = source;
    pass.jobs = 1;
    pass.workers = workers;
    pass.observe = observe;
    pass.label = "GPTQ sample";
    int64_t done = 0;
    if (rc == MQ_OK)
        rc = mq_sample_pass_run(&pass, &done, err);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    /* mirror the upper triangle */
    for (int i = 0; rc == MQ_OK && i < n; i++)
        for (int64_t a = 0; h[i] && a < k[i]; a++)
            for (int64_t b = 0; b < a; b++)
                h[i][a * k[i] + b] = h[i][b * k[i] + a];
    return rc;
}

/* ---- the rounding --------------------------------------------------------------------- */

/* In-place lower Cholesky factor of a [n, n]; 0 when not positive definite. */
static int cholesky(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t p = 0; p < j; p++)
            d -= a[j * n + p] * a[j * n + p];
        if (!(d > 0.0))
            return 0;
        d = sqrt(d);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int64_t p = 0; p < j; p++)
                s -= a[i * n + p] * a[j * n + p];
            a[i * n + j] = s / d;
        }
        for (int64_t p = j + 1; p < n; p++)
            a[j * n + p] = 0.0;
    }
    return 1;
}

/* H^-1 from its lower Cholesky factor L (H = L L^T), into out. */
static void inverse_from_cholesky(const double *l, int64_t n, double *out, double *tmp)
{
    /* tmp = L^-1 (lower triangular) */
    memset(tmp, 0, (size_t)(n * n) * sizeof *tmp);
    for (int64_t c = 0; c < n; c++) {
        tmp[c * n + c] = 1.0 / l[c * n + c];
        for (int64_t i = c + 1; i < n; i++) {
            double s = 0.0;
            for (int64_t p = c; p < i; p++)
                s += l[i * n + p] * tmp[p * n + c];
            tmp[i * n + c] = -s / l[i * n + i];
        }
    }
    /* H^-1 = L^-T L^-1 */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0.0;
            for (int64_t p = i; p < n; p++)
                s += tmp[p * n + i] * tmp[p * n + j];
            out[i * n + j] = out[j * n + i] = s;
        }
}

int mq_gptq_factor(const double *hessian, int64_t k, double *u, struct mq_error *err)
{
    double *tmp = malloc((size_t)(k * k) * sizeof *tmp);
    double *inv = malloc((size_t)(k * k) * sizeof *inv);
    if (!tmp || !inv) {
        free(tmp);
        free(inv);
        return mq_error_code(err, MQ_ERR_MEMORY, "GPTQ: out of memory");
    }
    double *h = u;
    memcpy(h, hessian, (size_t)(k * k) * sizeof *h);
    double mean_diag = 0.0;
    for (int64_t i = 0; i < k; i++)
        mean_diag += h[i * k + i];
    mean_diag /= (double)k;
    for (int64_t i = 0; i < k; i++) {
        if (h[i * k + i] == 0.0) {
            h[i * k + i] = 1.0; /* a dead input: nothing to compensate through it */
            for (int64_t j = 0; j < k; j++)
                if (j != i)
                    h[i * k + j] = h[j * k + i] = 0.0;
        }
        h[i * k + i] += 0.01 * (mean_diag > 0.0 ? mean_diag : 1.0);
    }
    int ok = cholesky(h, k);
    if (ok) {
        inverse_from_cholesky(h, k, inv, tmp);
        /* the lower factor of H^-1, transposed, is the upper factor U (H^-1 = U^T U) */
        memcpy(h, inv, (size_t)(k * k) * sizeof *h);
        ok = cholesky(h, k);
    }
    free(inv);
    free(tmp);
    if (!ok)
        return mq_error_set(err, "GPTQ: the input's second-moment matrix is not positive "
                            "definite");
    return MQ_OK;
}

int mq_weight_only_gptq(const struct mq_block_quantizer *bq, float *w, int64_t k, int64_t n,
                        int64_t block, const double *hessian, uint8_t *u, float *scales,
                        int *zeros, struct mq_error *err)
{
    double *h = malloc((size_t)(k * k) * sizeof *h);
    float *err_row = malloc((size_t)n * sizeof *err_row);
    if (!h || !err_row) {
        free(h);
        free(err_row);
        return mq_error_code(err, MQ_ERR_MEMORY, "GPTQ: out of memory");
    }
    int rc = mq_gptq_factor(hessian, k, h, err);
    if (rc) {
        free(h);
        free(err_row);
        return rc;
    }
    float levels = (float)((1 << bq->bits) - 1);
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i / block;
        if (i % block == 0) {
            int64_t rows = k - i < block ? k - i : block;
            for (int64_t c = 0; c < n; c++)
                mq_weight_only_block_params(bq, w + i * n + c, rows, n, &scales[j * n + c],
                                            &zeros[j * n + c]);
        }
        double d = h[i * k + i]; /* U[i][i] = L[i][i] */
        for (int64_t c = 0; c < n; c++) {
            float s = scales[j * n + c];
            int z = zeros[j * n + c];
            float q = nearbyintf(w[i * n + c] / s) + (float)z;
            q = q < 0.0f ? 0.0f : q > levels ? levels : q;
            u[i * n + c] = (uint8_t)q;
            err_row[c] = (float)((w[i * n + c] - (q - (float)z) * s) / d);
        }
        for (int64_t r = i + 1; r < k; r++) {
            float f = (float)h[r * k + i]; /* U[i][r] = L[r][i] */
            if (f == 0.0f)
                continue;
            for (int64_t c = 0; c < n; c++)
                w[r * n + c] -= err_row[c] * f;
        }
    }
    free(h);
    free(err_row);
    return MQ_OK;
}
