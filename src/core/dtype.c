/* The element-type table and the small-float codecs (see dtype.h). */
#include "core/dtype.h"

#include <math.h>
#include <string.h>

#include "core/tensor.h"

#define INT8_STORE MQ_DTYPE_INT8
#define UINT8_STORE MQ_DTYPE_UINT8

/* One row per ONNX element type, in DataType order; size 0 marks types not held in memory. */
static const struct mq_dtype_info table[] = {
    {MQ_DTYPE_UNDEFINED, "undefined", 0, 0, MQ_KIND_NONE, 0},
    {MQ_DTYPE_FLOAT, "float32", 4, 32, MQ_KIND_FLOAT, MQ_DTYPE_FLOAT},
    {MQ_DTYPE_UINT8, "uint8", 1, 8, MQ_KIND_UINT, MQ_DTYPE_UINT8},
    {MQ_DTYPE_INT8, "int8", 1, 8, MQ_KIND_INT, MQ_DTYPE_INT8},
    {MQ_DTYPE_UINT16, "uint16", 2, 16, MQ_KIND_UINT, MQ_DTYPE_UINT16},
    {MQ_DTYPE_INT16, "int16", 2, 16, MQ_KIND_INT, MQ_DTYPE_INT16},
    {MQ_DTYPE_INT32, "int32", 4, 32, MQ_KIND_INT, MQ_DTYPE_INT32},
    {MQ_DTYPE_INT64, "int64", 8, 64, MQ_KIND_INT, MQ_DTYPE_INT64},
    {MQ_DTYPE_STRING, "string", 0, 0, MQ_KIND_NONE, 0},
    {MQ_DTYPE_BOOL, "bool", 1, 8, MQ_KIND_BOOL, MQ_DTYPE_BOOL},
    {MQ_DTYPE_FLOAT16, "float16", 2, 16, MQ_KIND_FLOAT, MQ_DTYPE_FLOAT16},
    {MQ_DTYPE_DOUBLE, "float64", 8, 64, MQ_KIND_FLOAT, MQ_DTYPE_DOUBLE},
    {MQ_DTYPE_UINT32, "uint32", 4, 32, MQ_KIND_UINT, MQ_DTYPE_UINT32},
    {MQ_DTYPE_UINT64, "uint64", 8, 64, MQ_KIND_UINT, MQ_DTYPE_UINT64},
    {14, "complex64", 0, 64, MQ_KIND_NONE, 0},
    {15, "complex128", 0, 128, MQ_KIND_NONE, 0},
    {MQ_DTYPE_BFLOAT16, "bfloat16", 2, 16, MQ_KIND_FLOAT, MQ_DTYPE_BFLOAT16},
    {MQ_DTYPE_FLOAT8E4M3FN, "float8e4m3fn", 1, 8, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_FLOAT8E4M3FNUZ, "float8e4m3fnuz", 1, 8, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_FLOAT8E5M2, "float8e5m2", 1, 8, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_FLOAT8E5M2FNUZ, "float8e5m2fnuz", 1, 8, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_UINT4, "uint4", 1, 4, MQ_KIND_UINT, UINT8_STORE},
    {MQ_DTYPE_INT4, "int4", 1, 4, MQ_KIND_INT, INT8_STORE},
    {MQ_DTYPE_FLOAT4E2M1, "float4e2m1", 1, 4, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_FLOAT8E8M0, "float8e8m0", 1, 8, MQ_KIND_SMALL_FLOAT, UINT8_STORE},
    {MQ_DTYPE_UINT2, "uint2", 1, 2, MQ_KIND_UINT, UINT8_STORE},
    {MQ_DTYPE_INT2, "int2", 1, 2, MQ_KIND_INT, INT8_STORE},
};

const struct mq_dtype_info *mq_dtype_info(int dtype)
{
    if (dtype < 0 || (size_t)dtype >= sizeof table / sizeof table[0])
        return NULL;
    return &table[dtype];
}

int mq_dtype_kind(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i ? i->kind : MQ_KIND_NONE;
}

unsigned mq_dtype_bits(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i ? i->bits : 0;
}

uint64_t mq_dtype_file_bytes(int dtype, uint64_t count)
{
    unsigned bits = mq_dtype_bits(dtype);
    if (bits == 0 || count > UINT64_MAX / bits)
        return UINT64_MAX;
    return (count * bits + 7) / 8;
}

int mq_dtype_is_narrow_int(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i && i->bits < 8 && (i->kind == MQ_KIND_INT || i->kind == MQ_KIND_UINT);
}

int mq_dtype_int_range(int dtype, int32_t *lo, int32_t *hi)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    if (!i || i->bits > 16 || i->size == 0 || (i->kind != MQ_KIND_INT && i->kind != MQ_KIND_UINT))
        return -1;
    if (i->kind == MQ_KIND_INT) {
        *lo = -(INT32_C(1) << (i->bits - 1));
        *hi = (INT32_C(1) << (i->bits - 1)) - 1;
    } else {
        *lo = 0;
        *hi = (INT32_C(1) << i->bits) - 1;
    }
    return 0;
}

void mq_dtype_unpack(int dtype, uint8_t *dst, const uint8_t *packed, int64_t count)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    unsigned bits = i->bits, per = 8 / bits, mask = (1u << bits) - 1;
    int sign = i->kind == MQ_KIND_INT;
    for (int64_t k = 0; k < count; k++) {
        unsigned v = (packed[k / per] >> ((unsigned)(k % per) * bits)) & mask;
        if (sign && (v >> (bits - 1)))
            v |= ~mask & 0xffu; /* sign-extend into the byte */
        dst[k] = (uint8_t)v;
    }
}

void mq_dtype_pack(int dtype, uint8_t *packed, const uint8_t *src, int64_t count)
{
    unsigned bits = mq_dtype_bits(dtype), per = 8 / bits, mask = (1u << bits) - 1;
    memset(packed, 0, (size_t)((count + per - 1) / per));
    for (int64_t k = 0; k < count; k++)
        packed[k / per] |= (uint8_t)((src[k] & mask) << ((unsigned)(k % per) * bits));
}

/* ---- small floats ---------------------------------------------------------------------- */

/* How a format spends its top codes: fn (all-ones is NaN), fnuz (0x80 is NaN, no -0, no inf),
   ieee (top exponent is inf/NaN), none (no NaN, no inf). */
enum nan_style { NAN_FN, NAN_FNUZ, NAN_IEEE, NAN_NONE };

struct small_format {
    int dtype;
    int ebits, mbits, bias;
    int style;
};

static const struct small_format formats[] = {
    {MQ_DTYPE_FLOAT8E4M3FN, 4, 3, 7, NAN_FN},
    {MQ_DTYPE_FLOAT8E4M3FNUZ, 4, 3, 8, NAN_FNUZ},
    {MQ_DTYPE_FLOAT8E5M2, 5, 2, 15, NAN_IEEE},
    {MQ_DTYPE_FLOAT8E5M2FNUZ, 5, 2, 16, NAN_FNUZ},
    {MQ_DTYPE_FLOAT4E2M1, 2, 1, 1, NAN_NONE},
};

static const struct small_format *format_of(int dtype)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].dtype == dtype)
            return &formats[i];
    return NULL;
}

/* Largest finite value of a format. */
static double format_max(const struct small_format *f)
{
    int emax = (1 << f->ebits) - 1 - f->bias;
    double mant = 2.0 - ldexp(1.0, -f->mbits); /* all mantissa bits set */
    if (f->style == NAN_IEEE)
        emax -= 1;                              /* top exponent is inf/NaN */
    else if (f->style == NAN_FN)
        mant -= ldexp(1.0, -f->mbits);          /* all-ones code is NaN */
    return ldexp(mant, emax);
}

float mq_small_float_decode(int dtype, uint8_t code)
{
    if (dtype == MQ_DTYPE_FLOAT8E8M0)
        return code == 0xff ? NAN : (float)ldexp(1.0, (int)code - 127);
    const struct small_format *f = format_of(dtype);
    if (!f)
        return NAN;
    int n = 1 + f->ebits + f->mbits;
    unsigned sign = (code >> (n - 1)) & 1u;
    unsigned e = (code >> f->mbits) & ((1u << f->ebits) - 1);
    unsigned m = code & ((1u << f->mbits) - 1);
    if (f->style == NAN_FNUZ && code == (1u << (n - 1)))
        return NAN;
    if (f->style == NAN_FN && e == (1u << f->ebits) - 1 && m == (1u << f->mbits) - 1)
        return NAN;
    if (f->style == NAN_IEEE && e == (1u << f->ebits) - 1)
        return m ? NAN : (sign ? -INFINITY : INFINITY);
    double v = e == 0 ? ldexp((double)m, 1 - f->bias - f->mbits)
                      : ldexp((double)(m | (1u << f->mbits)), (int)e - f->bias - f->mbits);
    return (float)(sign ? -v : v);
}

static uint8_t e8m0_encode(float v, int saturate, int round_mode)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint32_t e = (bits >> 23) & 0xffu, m = bits & 0x7fffffu;
    if (e == 0xff)
        return (m || !saturate) ? 0xff : 0xfe; /* NaN; infinity saturates to 2^127 */
    int up = 0;
    if (round_mode == MQ_ROUND_UP)
        up = m != 0;
    else if (round_mode == MQ_ROUND_NEAREST)
        up = m >= 0x400000u; /* ties go to the larger power of two */
    if (up) {
        if (e == 0xfe)
            return saturate ? 0xfe : 0xff;
        e++;
    }
    return (uint8_t)e;
}

uint8_t mq_small_float_encode(int dtype, float v, int saturate, int round_mode)
{
    if (dtype == MQ_DTYPE_FLOAT8E8M0)
        return e8m0_encode(v, saturate, round_mode);
    const struct small_format *f = format_of(dtype);
    if (!f)
        return 0;
    int n = 1 + f->ebits + f->mbits;
    uint8_t sign = signbit(v) ? (uint8_t)(1u << (n - 1)) : 0;
    uint8_t nan_code = f->style == NAN_FNUZ ? (uint8_t)(1u << (n - 1))
                     : f->style == NAN_NONE ? (uint8_t)(1u << (n - 1)) /* -0: no NaN code */
                                            : (uint8_t)(sign | ((1u << (n - 1)) - 1));
    if (isnan(v))
        return nan_code;
    double max = format_max(f), a = fabs((double)v);
    int emin = 1 - f->bias; /* exponent of the smallest normal */
    int sat = saturate || f->style == NAN_NONE;
    double r = a;
    if (!isinf(a)) {
        int e;
        frexp(a, &e);
        e -= 1; /* a = 1.x * 2^e */
        if (e < emin)
            e = emin;
        double q = ldexp(1.0, e - f->mbits);
        r = nearbyint(a / q) * q; /* round to nearest even at the format's precision */
    }
    if (r > max) {
        if (sat)
            r = max;
        else if (f->style == NAN_IEEE)
            return (uint8_t)(sign | (((1u << f->ebits) - 1) << f->mbits)); /* infinity */
        else
            return nan_code;
    }
    if (r == 0)
        return f->style == NAN_FNUZ ? 0 : sign;
    unsigned code;
    if (r < ldexp(1.0, emin)) {
        code = (unsigned)ldexp(r, f->mbits - emin); /* subnormal */
    } else {
        int e;
        frexp(r, &e);
        e -= 1;
        unsigned m = (unsigned)(ldexp(r, f->mbits - e)) - (1u << f->mbits);
        code = ((unsigned)(e + f->bias) << f->mbits) | m;
    }
    return (uint8_t)(sign | code);
}
