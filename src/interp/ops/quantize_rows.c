/*
 * Row kernels of QuantizeLinear and DequantizeLinear (see quantize_rows.h): the scalar
 * formula, and vector versions of it for SSE2, AVX2 and AVX-512 (quantize_rows_simd.h holds
 * their shared body), with the pick of the widest the CPU runs.
 *
 * The vector paths compute q - zero: the quotient t = x / scale saturated to [lo - zero,
 * hi - zero] (NaN to lo - zero, as the scalar code sends NaN to lo), then rounded half to even by
 * adding and subtracting 1.5 * 2^23 in the current rounding mode (nearbyintf's; exact for
 * |t| <= 2^22, and never -0).  Saturating before rounding gives what rounding then saturating
 * gives, the bounds being integers.  Quantize adds the zero point back; the fused pair multiplies
 * by scale, (float)(q - zero) * scale exactly.
 *
 * The division is what costs in a vector loop, so the vector paths first take t = x * (1 / scale)
 * and keep it where it provably rounds to the same integer as the division: r = 1 / scale
 * rounded and the product rounded put t within 3 * 2^-24 * |t| of x / scale rounded (scale
 * between 2^-60 and 2^60 keeps r and every product that can round to a nonzero integer
 * normal).  Saturated, t lies within 2^17 of zero; when it lies further than 2^-20 * |t| from
 * every half-integer, no half-integer separates it from x / scale saturated, so both round to the
 * same integer.  A t clamped to a bound has x / scale past it or within 1/16 of it (or both
 * beyond 2^18, same sign): both give the bound.  NaN and infinities come out of both alike.  A
 * vector with a lane near a half-integer (about one value in 10^4 on 8-bit rows, every exact
 * tie among them) is divided instead.
 */
#include "interp/ops/quantize_rows.h"
#include "util/cpu.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/dtype.h"
#include "interp/ops/quant_types.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_X86_WIDE 1
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#define ROUND_MAGIC 12582912.0f  /* 1.5 * 2^23: adding it rounds |t| <= 2^22 to an integer */
#define TIE_TOLERANCE 0x1p-20f   /* relative distance to a half-integer trusted after x * r */
#define RECIP_SCALE_MIN 0x1p-60f
#define RECIP_SCALE_MAX 0x1p60f

/* One row's scale and zero point as the loops use them. */
struct row_params {
    float scale, recip, zero, lo, hi;
    float lo_steps, hi_steps; /* lo - zero, hi - zero: the range of q - zero */
    int use_recip;
};

static void row_params_init(struct row_params *r, float scale, int32_t zero, int storage)
{
    int32_t qmin = 0, qmax = 0;
    quant_range(storage, &qmin, &qmax);
    r->scale = scale;
    r->zero = (float)zero;
    r->lo = (float)qmin;
    r->hi = (float)qmax;
    r->lo_steps = (float)(qmin - zero);
    r->hi_steps = (float)(qmax - zero);
    float mag = fabsf(scale);
    r->use_recip = mag >= RECIP_SCALE_MIN && mag <= RECIP_SCALE_MAX;
    r->recip = r->use_recip ? 1.0f / scale : 0.0f;
}

/* ---- scalar: the reference, and the tails of the vector loops ----------------------------- */

static inline int32_t quantize_one(float x, const struct row_params *r)
{
    return quantize_value(nearbyintf(x / r->scale) + r->zero, r->lo, r->hi);
}

#define QUANTIZE_SCALAR(T)                                                                    \
    do {                                                                                      \
        T *q_ = q;                                                                            \
        for (; k < n; k++)                                                                    \
            q_[k] = (T)quantize_one(x[k], r);                                                 \
    } while (0)

static void quantize_scalar_from(const float *x, int64_t k, int64_t n,
                                 const struct row_params *r, int storage, void *q)
{
    switch (storage) {
    case MQ_DTYPE_UINT8: QUANTIZE_SCALAR(uint8_t); break;
    case MQ_DTYPE_INT8: QUANTIZE_SCALAR(int8_t); break;
    case MQ_DTYPE_UINT16: QUANTIZE_SCALAR(uint16_t); break;
    case MQ_DTYPE_INT16: QUANTIZE_SCALAR(int16_t); break;
    default: break;
    }
}

static void fake_quantize_scalar_from(const float *x, int64_t k, int64_t n,
                                      const struct row_params *r, float *y)
{
    int32_t zero = (int32_t)r->zero;
    for (; k < n; k++)
        y[k] = (float)(quantize_one(x[k], r) - zero) * r->scale;
}

#define DEQUANTIZE_SCALAR(T)                                                                  \
    do {                                                                                      \
        const T *q_ = q;                                                                      \
        for (; k < n; k++)                                                                    \
            y[k] = (float)((int32_t)q_[k] - zero) * scale;                                    \
    } while (0)

static void dequantize_scalar_from(const void *q, int64_t k, int64_t n, float scale,
                                   int32_t zero, int storage, float *y)
{
    switch (storage) {
    case MQ_DTYPE_UINT8: DEQUANTIZE_SCALAR(uint8_t); break;
    case MQ_DTYPE_INT8: DEQUANTIZE_SCALAR(int8_t); break;
    case MQ_DTYPE_UINT16: DEQUANTIZE_SCALAR(uint16_t); break;
    case MQ_DTYPE_INT16: DEQUANTIZE_SCALAR(int16_t); break;
    default: break;
    }
}

static void quantize_scalar(const float *x, int64_t n, float scale, int32_t zero, int storage,
                            void *q)
{
    struct row_params r;
    row_params_init(&r, scale, zero, storage);
    quantize_scalar_from(x, 0, n, &r, storage, q);
}

static void fake_quantize_scalar(const float *x, int64_t n, float scale, int32_t zero,
                                 int storage, float *y)
{
    struct row_params r;
    row_params_init(&r, scale, zero, storage);
    fake_quantize_scalar_from(x, 0, n, &r, y);
}

static void dequantize_scalar(const void *q, int64_t n, float scale, int32_t zero, int storage,
                              float *y)
{
    dequantize_scalar_from(q, 0, n, scale, zero, storage, y);
}

static const struct mq_qrows_ops scalar_ops = {"scalar", quantize_scalar, fake_quantize_scalar,
                                               dequantize_scalar};

/* ---- SSE2 (every x86-64) ------------------------------------------------------------------ */

#if defined(__SSE2__)
static inline void sse2_store4(void *p, __m128i v)
{
    int32_t word = _mm_cvtsi128_si32(v);
    memcpy(p, &word, 4);
}

static inline __m128i sse2_load4(const void *p)
{
    int32_t word;
    memcpy(&word, p, 4);
    return _mm_cvtsi32_si128(word);
}

static inline __m128i sse2_load8(const void *p) { return _mm_loadl_epi64((const __m128i *)p); }

#define QR_NAME(x) x##_sse2
#define QR_ISA_NAME "sse2"
#define QR_TARGET
#define QR_ZEROUPPER()
#define QR_V __m128
#define QR_W 4
#define QR_LOADU _mm_loadu_ps
#define QR_STOREU _mm_storeu_ps
#define QR_SET1 _mm_set1_ps
#define QR_ADD _mm_add_ps
#define QR_SUB _mm_sub_ps
#define QR_MUL _mm_mul_ps
#define QR_DIV _mm_div_ps
#define QR_MAX _mm_max_ps
#define QR_MIN _mm_min_ps
#define QR_ABS(v) _mm_andnot_ps(_mm_set1_ps(-0.0f), v)
#define QR_FMADD(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define QR_ANY_GE(a, b) _mm_movemask_ps(_mm_cmpge_ps(a, b))
#define QR_I32(v) _mm_cvttps_epi32(v)
#define QR_STORE_UINT8(p, v)                                                                  \
    sse2_store4(p, _mm_packus_epi16(_mm_packs_epi32(QR_I32(v), QR_I32(v)), _mm_setzero_si128()))
#define QR_STORE_INT8(p, v)                                                                   \
    sse2_store4(p, _mm_packs_epi16(_mm_packs_epi32(QR_I32(v), QR_I32(v)), _mm_setzero_si128()))
/* no unsigned 32 -> 16 pack in SSE2: pack q - 32768 signed and flip the top bit back */
#define QR_STORE_UINT16(p, v)                                                                 \
    _mm_storel_epi64((__m128i *)(p),                                                          \
                     _mm_xor_si128(_mm_packs_epi32(_mm_sub_epi32(QR_I32(v),                   \
                                                                 _mm_set1_epi32(32768)),      \
                                                   _mm_setzero_si128()),                      \
                                   _mm_set1_epi16((short)0x8000)))
#define QR_STORE_INT16(p, v)                                                                  \
    _mm_storel_epi64((__m128i *)(p), _mm_packs_epi32(QR_I32(v), _mm_setzero_si128()))
#define QR_WIDEN_UINT8(p)                                                                     \
    _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(sse2_load4(p), _mm_setzero_si128()), \
                                       _mm_setzero_si128()))
#define QR_WIDEN_INT8(p)                                                                      \
    _mm_cvtepi32_ps(_mm_srai_epi32(                                                           \
        _mm_unpacklo_epi16(_mm_unpacklo_epi8(sse2_load4(p), sse2_load4(p)),                   \
                           _mm_unpacklo_epi8(sse2_load4(p), sse2_load4(p))), 24))
#define QR_WIDEN_UINT16(p) _mm_cvtepi32_ps(_mm_unpacklo_epi16(sse2_load8(p), _mm_setzero_si128()))
#define QR_WIDEN_INT16(p)                                                                     \
    _mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpacklo_epi16(sse2_load8(p), sse2_load8(p)), 16))
#include "interp/ops/quantize_rows_simd.h"
#include "interp/ops/quantize_rows_undef.h"
#endif

#ifdef HAVE_X86_WIDE
/* ---- AVX2 ----------------------------------------------------------------------------------- */

#define QR_NAME(x) x##_avx2
#define QR_ISA_NAME "avx2"
#define QR_TARGET __attribute__((target("avx2,fma")))
#define QR_ZEROUPPER _mm256_zeroupper
#define QR_V __m256
#define QR_W 8
#define QR_LOADU _mm256_loadu_ps
#define QR_STOREU _mm256_storeu_ps
#define QR_SET1 _mm256_set1_ps
#define QR_ADD _mm256_add_ps
#define QR_SUB _mm256_sub_ps
#define QR_MUL _mm256_mul_ps
#define QR_DIV _mm256_div_ps
#define QR_MAX _mm256_max_ps
#define QR_MIN _mm256_min_ps
#define QR_ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define QR_FMADD _mm256_fmadd_ps
#define QR_ANY_GE(a, b) _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GE_OQ))
/* the 8 int32 of v as two halves packed into one 128-bit register of 16-bit values */
#define QR_PACK16(v, PACK)                                                                    \
    PACK(_mm256_castsi256_si128(_mm256_cvttps_epi32(v)),                                      \
         _mm256_extracti128_si256(_mm256_cvttps_epi32(v), 1))
#define QR_STORE_UINT8(p, v)                                                                  \
    _mm_storel_epi64((__m128i *)(p),                                                          \
                     _mm_packus_epi16(QR_PACK16(v, _mm_packs_epi32), _mm_setzero_si128()))
#define QR_STORE_INT8(p, v)                                                                   \
    _mm_storel_epi64((__m128i *)(p),                                                          \
                     _mm_packs_epi16(QR_PACK16(v, _mm_packs_epi32), _mm_setzero_si128()))
#define QR_STORE_UINT16(p, v) _mm_storeu_si128((__m128i *)(p), QR_PACK16(v, _mm_packus_epi32))
#define QR_STORE_INT16(p, v) _mm_storeu_si128((__m128i *)(p), QR_PACK16(v, _mm_packs_epi32))
#define QR_WIDEN_UINT8(p) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sse2_load8(p)))
#define QR_WIDEN_INT8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sse2_load8(p)))
#define QR_WIDEN_UINT16(p)                                                                    \
    _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define QR_WIDEN_INT16(p)                                                                     \
    _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(p))))
#include "interp/ops/quantize_rows_simd.h"
#include "interp/ops/quantize_rows_undef.h"
#undef QR_PACK16

/* ---- AVX-512 -------------------------------------------------------------------------------- */

#define QR_NAME(x) x##_avx512
#define QR_ISA_NAME "avx512"
#define QR_TARGET __attribute__((target("avx512f")))
#define QR_ZEROUPPER _mm256_zeroupper
#define QR_V __m512
#define QR_W 16
#define QR_LOADU _mm512_loadu_ps
#define QR_STOREU _mm512_storeu_ps
#define QR_SET1 _mm512_set1_ps
#define QR_ADD _mm512_add_ps
#define QR_SUB _mm512_sub_ps
#define QR_MUL _mm512_mul_ps
#define QR_DIV _mm512_div_ps
#define QR_MAX _mm512_max_ps
#define QR_MIN _mm512_min_ps
#define QR_ABS _mm512_abs_ps
#define QR_FMADD _mm512_fmadd_ps
#define QR_ANY_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
/* the values are in the type's range already: the truncating narrows keep them */
#define QR_STORE_UINT8(p, v)                                                                  \
    _mm_storeu_si128((__m128i *)(p), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)))
#define QR_STORE_INT8 QR_STORE_UINT8
#define QR_STORE_UINT16(p, v)                                                                 \
    _mm256_storeu_si256((__m256i *)(p), _mm512_cvtepi32_epi16(_mm512_cvttps_epi32(v)))
#define QR_STORE_INT16 QR_STORE_UINT16
#define QR_WIDEN_UINT8(p)                                                                     \
    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define QR_WIDEN_INT8(p)                                                                      \
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define QR_WIDEN_UINT16(p)                                                                    \
    _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))))
#define QR_WIDEN_INT16(p)                                                                     \
    _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(p))))
#include "interp/ops/quantize_rows_simd.h"
#include "interp/ops/quantize_rows_undef.h"

#endif

const struct mq_qrows_ops *mq_qrows_ops_for(enum mq_qrows_isa isa)
{
    switch (isa) {
    case MQ_QROWS_SCALAR: return &scalar_ops;
#if defined(__SSE2__)
    case MQ_QROWS_SSE2: return &ops_sse2;
#endif
#ifdef HAVE_X86_WIDE
    case MQ_QROWS_AVX2: return mq_cpu_level() >= MQ_CPU_AVX2 ? &ops_avx2 : NULL;
    case MQ_QROWS_AVX512: return mq_cpu_level() >= MQ_CPU_AVX512 ? &ops_avx512 : NULL;
#endif
    default: return NULL;
    }
}

const struct mq_qrows_ops *mq_qrows_best(void)
{
    for (int isa = MQ_QROWS_ISAS - 1; isa > MQ_QROWS_SCALAR; isa--) {
        const struct mq_qrows_ops *ops = mq_qrows_ops_for((enum mq_qrows_isa)isa);
        if (ops)
            return ops;
    }
    return &scalar_ops;
}
