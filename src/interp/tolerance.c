/*
 * Comparing a computed tensor with an expected one under the stated tolerances (see
 * tolerance.h).
 */
#include "interp/tolerance.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"

void mq_tensor_compare(const struct mq_tensor *actual, const struct mq_tensor *expected,
                       double rtol, double atol, struct mq_compare_result *r)
{
    memset(r, 0, sizeof *r);
    r->worst_index = -1;
    char a_shape[128], e_shape[128];
    if (!mq_shape_equal(actual, expected)) {
        snprintf(r->reason, sizeof r->reason, "shape %s, expected %s",
                 mq_shape_format(actual->rank, actual->dims, a_shape, sizeof a_shape),
                 mq_shape_format(expected->rank, expected->dims, e_shape, sizeof e_shape));
        return;
    }
    /* float8 and float4 codes compare by value (NaN has several codes) */
    int float_a = mq_dtype_is_float(actual->dtype) ||
                  mq_dtype_kind(actual->dtype) == MQ_KIND_SMALL_FLOAT;
    int float_e = mq_dtype_is_float(expected->dtype) ||
                  mq_dtype_kind(expected->dtype) == MQ_KIND_SMALL_FLOAT;
    if (actual->dtype != expected->dtype && !(float_a && float_e)) {
        snprintf(r->reason, sizeof r->reason, "type %s, expected %s",
                 mq_dtype_name(actual->dtype), mq_dtype_name(expected->dtype));
        return;
    }
    double worst_excess = 0;
    int64_t mismatches = 0;
    for (int64_t i = 0; i < actual->count; i++) {
        if (float_e) {
            double a = mq_tensor_get_double(actual, i), e = mq_tensor_get_double(expected, i);
            if (isnan(a) && isnan(e))
                continue;
            if (isinf(e) || isinf(a) || isnan(a) || isnan(e)) {
                if (a == e)
                    continue;
                mismatches++;
                if (r->worst_index < 0 || worst_excess < INFINITY) {
                    worst_excess = INFINITY;
                    r->worst_index = i;
                    r->worst_actual = a;
                    r->worst_expected = e;
                }
                continue;
            }
            double diff = fabs(a - e);
            if (isnan(diff))
                diff = INFINITY;
            if (diff > r->max_abs_error)
                r->max_abs_error = diff;
            if (e != 0 && diff / fabs(e) > r->max_rel_error)
                r->max_rel_error = diff / fabs(e);
            double excess = diff - (atol + rtol * fabs(e));
            if (excess > 0) {
                mismatches++;
                if (r->worst_index < 0 || excess > worst_excess) {
                    worst_excess = excess;
                    r->worst_index = i;
                    r->worst_actual = a;
                    r->worst_expected = e;
                }
            }
        } else {
            int64_t a = mq_tensor_get_int64(actual, i), e = mq_tensor_get_int64(expected, i);
            if (a != e) {
                double diff = fabs((double)a - (double)e);
                if (diff > r->max_abs_error)
                    r->max_abs_error = diff;
                if (r->worst_index < 0 || diff > worst_excess) {
                    worst_excess = diff;
                    r->worst_index = i;
                    r->worst_actual = (double)a;
                    r->worst_expected = (double)e;
                }
                mismatches++;
            }
        }
    }
    if (mismatches) {
        snprintf(r->reason, sizeof r->reason,
                 "%lld of %lld elements differ; worst at index %lld: %.9g, expected %.9g",
                 (long long)mismatches, (long long)actual->count, (long long)r->worst_index,
                 r->worst_actual, r->worst_expected);
        return;
    }
    r->match = 1;
}
