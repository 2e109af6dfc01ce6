/*
 * Scale and zero point from a float range, and the integer conversions that use them (see
 * params.h).
 */
#include "quant/params.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/tensor.h"

static const struct {
    const char *name;
    int dtype;
} qtypes[] = {
    {"uint8", MQ_DTYPE_UINT8}, {"int8", MQ_DTYPE_INT8},   {"uint16", MQ_DTYPE_UINT16},
    {"int16", MQ_DTYPE_INT16}, {"uint4", MQ_DTYPE_UINT4}, {"int4", MQ_DTYPE_INT4},
};

int mq_qtype_valid(int dtype)
{
    return mq_qtype_name(dtype) != NULL;
}

int mq_qtype_signed(int dtype)
{
    return dtype == MQ_DTYPE_INT8 || dtype == MQ_DTYPE_INT16 || dtype == MQ_DTYPE_INT4;
}

int mq_qtype_bits(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT16:
        return 16;
    case MQ_DTYPE_UINT4:
    case MQ_DTYPE_INT4:
        return 4;
    default:
        return 8;
    }
}

const char *mq_qtype_name(int dtype)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (qtypes[i].dtype == dtype)
            return qtypes[i].name;
    return NULL;
}

int mq_qtype_parse(const char *name, int *dtype)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (strcmp(qtypes[i].name, name) == 0) {
            *dtype = qtypes[i].dtype;
            return 0;
        }
    return -1;
}

struct mq_qrange mq_qrange_full(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_UINT8:
        return (struct mq_qrange){0, 255};
    case MQ_DTYPE_INT8:
        return (struct mq_qrange){-128, 127};
    case MQ_DTYPE_UINT16:
        return (struct mq_qrange){0, 65535};
    case MQ_DTYPE_INT16:
        return (struct mq_qrange){-32768, 32767};
    case MQ_DTYPE_UINT4:
        return (struct mq_qrange){0, 15};
    case MQ_DTYPE_INT4:
        return (struct mq_qrange){-8, 7};
    default:
        return (struct mq_qrange){0, 0};
    }
}

struct mq_qrange mq_qrange_for(int dtype, int symmetric, int reduce_range)
{
    /* Reduce-range wins over symmetric: it is already symmetric for the signed types. */
    if (reduce_range) {
        switch (dtype) {
        case MQ_DTYPE_UINT8:
            return (struct mq_qrange){0, 127};
        case MQ_DTYPE_INT8:
            return (struct mq_qrange){-64, 64};
        case MQ_DTYPE_UINT16:
            return (struct mq_qrange){0, 32767};
        case MQ_DTYPE_INT16:
            return (struct mq_qrange){-16384, 16384};
        case MQ_DTYPE_UINT4:
            return (struct mq_qrange){0, 7};
        case MQ_DTYPE_INT4:
            return (struct mq_qrange){-4, 3};
        default:
            return (struct mq_qrange){0, 0};
        }
    }
    struct mq_qrange r = mq_qrange_full(dtype);
    /* 4-bit types keep their full range when symmetric (the spec's table). */
    if (symmetric && mq_qtype_bits(dtype) != 4) {
        if (mq_qtype_signed(dtype))
            r.qmin = -r.qmax;
        else
            r.qmax -= 1;
    }
    return r;
}

int mq_qparams_compute(float lo, float hi, struct mq_qrange range, int symmetric,
                       struct mq_qparams *out, struct mq_error *err)
{
    if (!isfinite(lo) || !isfinite(hi))
        return mq_error_set(err, "range [%g, %g] is not finite", (double)lo, (double)hi);
    if (lo > hi)
        return mq_error_set(err, "range [%g, %g] has min above max", (double)lo, (double)hi);
    if (range.qmin >= range.qmax)
        return mq_error_set(err, "integer range [%d, %d] is empty", (int)range.qmin,
                            (int)range.qmax);
    /* Zero must be exactly representable: padding and ReLU produce it. */
    if (lo > 0.0f)
        lo = 0.0f;
    if (hi < 0.0f)
        hi = 0.0f;
    if (symmetric) {
        float m = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        lo = -m;
        hi = m;
    }
    /* The subtraction is in float, as onnxruntime does it on float32 arrays. */
    float width = hi - lo;
    if (!isfinite(width))
        return mq_error_set(err, "range [%g, %g] is wider than a float can hold", (double)lo,
                            (double)hi);
    double scale64 = (double)width / ((double)range.qmax - (double)range.qmin);
    if (scale64 < (double)FLT_MIN) {
        out->scale = 1.0f;
        out->zero_point = 0;
        return MQ_OK;
    }
    double zp = symmetric ? nearbyint(((double)range.qmin + (double)range.qmax) / 2.0)
                          : nearbyint((double)range.qmin - (double)lo / scale64);
    if (zp < range.qmin)
        zp = range.qmin;
    if (zp > range.qmax)
        zp = range.qmax;
    out->scale = (float)scale64;
    out->zero_point = (int32_t)zp;
    return MQ_OK;
}

int32_t mq_quantize_value(float x, struct mq_qparams p, struct mq_qrange full)
{
    float r = nearbyintf(x / p.scale);
    /* NaN compares false everywhere: it lands on the zero point, never on garbage. */
    double q = (r == r) ? (double)r + (double)p.zero_point : (double)p.zero_point;
    if (q < full.qmin)
        return full.qmin;
    if (q > full.qmax)
        return full.qmax;
    return (int32_t)q;
}

float mq_dequantize_value(int32_t q, struct mq_qparams p)
{
    return (float)(q - p.zero_point) * p.scale;
}

int32_t mq_quantize_bias(float x, float scale)
{
    float r = nearbyintf(x / scale);
    if (!(r == r))
        return 0;
    if (r <= (float)INT32_MIN)
        return INT32_MIN;
    /* (float)INT32_MAX rounds up to 2^31, which does not fit. */
    if (r >= 2147483648.0f)
        return INT32_MAX;
    return (int32_t)r;
}

double mq_bias_min_scale(float absmax)
{
    /* int32 spans 2^32 - 1 steps symmetrically: [-(2^31 - 1), 2^31 - 1]. */
    const double qrange = (double)INT32_MAX - ((double)INT32_MIN + 1.0);
    return 1.0001 * (2.0 * (double)absmax) / qrange;
}
