/*
 * Packed-weight float32 GEMM for convolutions (see conv_gemm.h).
 *
 * Blocking: B is taken KC rows at a time, in blocks of up to NC columns
 * split into NR-column panels, packed k-major into a scratch block that
 * stays in L2.  W is packed at plan time the same way, KC by KC, so that a
 * k block of W is one sequential stream (it comes from memory: W can be
 * megabytes).  Each MR-row panel of W then meets every panel of the block
 * while it is in L1: a micro-kernel call multiplies it by one panel into an
 * MR x NR tile of Y held in registers, MR broadcasts of W and NR / width
 * loads of B feeding MR * NR / width FMAs per k.  The first k block starts
 * the tile from the bias (and the residual), the others from Y; the last
 * applies the fused activation (Relu, Clip or HardSwish).
 *
 *   AVX-512: MR = 12, NR = 32 (24 accumulators of 16 floats), with 8- and
 *            4-row and 16-column variants for short tiles, and a
 *            one-column kernel (vectors along W's rows) for stragglers
 *   AVX2:    MR = 6,  NR = 16 (12 accumulators of 8 floats)
 *
 * Partial tiles (the last rows of W, the last columns of B): the AVX-512
 * kernels mask their loads and stores of Y; AVX2 runs them on a full-size
 * tile on the stack.  A residual (the other operand of an Add that follows
 * the convolution) is added with the bias.
 *
 * With an image (mq_conv_gemm_run_image, AVX-512), a panel row of B (up to
 * 32 output positions, one tap of one channel) is one run of an input plane
 * shifted by the tap's offset, with the positions whose tap falls outside
 * the plane masked to zero: a masked load (which never faults on masked
 * lanes) per 16 floats builds the packed block without an im2col matrix.
 */
#include "interp/ops/conv_gemm.h"
#include "util/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#endif

#define KC 256           /* rows of B per block */
#define NC 256           /* columns of B per block */
#define MAX_MR 12
#define MAX_NR 32
#define MAX_IMAGE_TAPS 16 /* kernel extent per axis that the image packer handles */

/* Where a micro-kernel's tile of Y goes and what is added to it. */
struct tile_io {
    float *c;                  /* the tile of Y, rows ldc apart */
    int64_t ldc;
    const float *bias;         /* one value per row, or NULL */
    const float *res;          /* a tile added once, with the bias, or NULL */
    int64_t ldr;
    int first;                 /* first k block: start from bias + res, else from Y */
    int act;                   /* last k block of a fused activation: 0 none, ACT_CLAMP to
                                  [lo, hi] (Clip), ACT_LOWER (Relu), ACT_HARDSWISH */
    float lo, hi;
    int rows, cols;            /* valid part; the AVX2 kernel is only given full tiles */
};

/* ACT_LOWER is ACT_CLAMP with hi +inf (Relu), whose min(+inf, v) is v: left out */
enum { ACT_NONE, ACT_CLAMP, ACT_LOWER, ACT_HARDSWISH };

typedef void (*micro_kernel)(int64_t kc, const float *a, const float *b,
                             const struct tile_io *io);

#ifdef HAVE_X86_KERNELS

#define ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

/*
 * AVX-512 kernels for ROWS rows of W (the panel is 12 wide whatever ROWS is:
 * a short last panel runs only the rows it has) by 32 or 16 columns of B (a
 * panel is 32 wide; a tail of at most 16 columns needs only one vector).
 */
/*
 * W is read once per run, from memory when it is large, and consumed slowly
 * (a k step of 12 weights per 12 or 24 FMAs): the hardware prefetchers leave
 * the kernels waiting on it, so they fetch W this many floats (32 k steps,
 * about a memory latency of work) ahead.  Packed W is one stream per k
 * block, so this runs into the next panel, which comes next.
 */
#define W_PREFETCH (32 * 12)
/* (an address past the last panel is never loaded: prefetches do not fault, and it is formed
   as an integer, not by pointer arithmetic past the buffer) */
#define PREFETCH_W(a)                                                                              \
    _mm_prefetch((const char *)((uintptr_t)(a) + W_PREFETCH * sizeof(float)), _MM_HINT_T0)

/* HardSwish's x * (v < 0 ? 0 : v > 1 ? 1 : v), v = x / 6 + 0.5, lane by lane (NaN stays) */
__attribute__((target("avx512f"))) static inline __m512 hardswish_avx512(__m512 x)
{
    const __m512 v = _mm512_add_ps(_mm512_div_ps(x, _mm512_set1_ps(6.0f)), _mm512_set1_ps(0.5f));
    return _mm512_mul_ps(x, _mm512_min_ps(_mm512_set1_ps(1.0f),
                                          _mm512_max_ps(_mm512_setzero_ps(), v)));
}

__attribute__((target("avx2"))) static inline __m256 hardswish_avx2(__m256 x)
{
    const __m256 v = _mm256_add_ps(_mm256_div_ps(x, _mm256_set1_ps(6.0f)), _mm256_set1_ps(0.5f));
    return _mm256_mul_ps(x, _mm256_min_ps(_mm256_set1_ps(1.0f),
                                          _mm256_max_ps(_mm256_setzero_ps(), v)));
}

/* Row r of the tile into Y (masked to the valid columns): one or two vectors. */
#define AVX512_STORE_BEGIN(r)                                                                      \
    if ((r) < io->rows) {                                                                          \
        float *cr = io->c + (r) * io->ldc;                                                         \
        const float *rr = io->res ? io->res + (r) * io->ldr : NULL;                                \
        const __m512 start = io->first && io->bias ? _mm512_set1_ps(io->bias[r]) : zero;
#define AVX512_STORE_HALF(acc, off, mask)                                                          \
    {                                                                                              \
        __m512 s = io->first ? (rr ? _mm512_add_ps(start, _mm512_maskz_loadu_ps(mask, rr + (off))) \
                                   : start)                                                        \
                             : _mm512_maskz_loadu_ps(mask, cr + (off));                            \
        s = _mm512_add_ps(s, acc);                                                                 \
        if (io->act == ACT_LOWER)                                                                  \
            s = _mm512_max_ps(_mm512_set1_ps(io->lo), s);                                          \
        else if (io->act == ACT_CLAMP)                                                             \
            s = _mm512_min_ps(_mm512_set1_ps(io->hi), _mm512_max_ps(_mm512_set1_ps(io->lo), s));   \
        else if (io->act == ACT_HARDSWISH)                                                         \
            s = hardswish_avx512(s);                                                               \
        _mm512_mask_storeu_ps(cr + (off), mask, s);                                                \
    }
#define AVX512_STORE2(r)                                                                           \
    AVX512_STORE_BEGIN(r)                                                                          \
    AVX512_STORE_HALF(c##r##a, 0, m0)                                                              \
    AVX512_STORE_HALF(c##r##b, 16, m1)                                                             \
    }
#define AVX512_STORE1(r)                                                                           \
    AVX512_STORE_BEGIN(r)                                                                          \
    AVX512_STORE_HALF(c##r##a, 0, m0)                                                              \
    }

/* max(lo, x) and min(hi, x) return x when x is NaN (the second operand), as Clip does. */
#define DEFINE_AVX512_KERNEL_32(NAME, ROWS)                                                        \
    __attribute__((target("avx512f"))) static void NAME(int64_t kc, const float *a,               \
                                                         const float *b,                          \
                                                         const struct tile_io *io)                \
    {                                                                                              \
        const __m512 zero = _mm512_setzero_ps();                                                   \
        ROWS(DECLARE2)                                                                             \
        for (int64_t k = 0; k < kc; k++, a += 12, b += 32) {                                       \
            PREFETCH_W(a);                                                                         \
            const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                    \
            ROWS(STEP2)                                                                            \
        }                                                                                          \
        const int cols = io->cols;                                                                 \
        const __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);       \
        const __mmask16 m1 = cols >= 32   ? (__mmask16)0xffff                                      \
                             : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1)                    \
                                         : (__mmask16)0;                                           \
        ROWS(STORE2)                                                                               \
    }

#define DEFINE_AVX512_KERNEL_16(NAME, ROWS)                                                        \
    __attribute__((target("avx512f"))) static void NAME(int64_t kc, const float *a,               \
                                                         const float *b,                          \
                                                         const struct tile_io *io)                \
    {                                                                                              \
        const __m512 zero = _mm512_setzero_ps();                                                   \
        ROWS(DECLARE1)                                                                             \
        for (int64_t k = 0; k < kc; k++, a += 12, b += 32) {                                       \
            PREFETCH_W(a);                                                                         \
            const __m512 b0 = _mm512_loadu_ps(b);                                                  \
            ROWS(STEP1)                                                                            \
        }                                                                                          \
        const int cols = io->cols;                                                                 \
        const __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);       \
        ROWS(STORE1)                                                                               \
    }

#define DECLARE2(r) __m512 c##r##a = zero, c##r##b = zero;
#define DECLARE1(r) __m512 c##r##a = zero;
#define STEP2(r)                                                                                   \
    {                                                                                              \
        const __m512 ar = _mm512_set1_ps(a[r]);                                                    \
        c##r##a = _mm512_fmadd_ps(ar, b0, c##r##a);                                                \
        c##r##b = _mm512_fmadd_ps(ar, b1, c##r##b);                                                \
    }
#define STEP1(r) c##r##a = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, c##r##a);
#define STORE2(r) AVX512_STORE2(r)
#define STORE1(r) AVX512_STORE1(r)
#define ROWS4(X) X(0) X(1) X(2) X(3)
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

DEFINE_AVX512_KERNEL_32(kernel_avx512, ROWS12)
DEFINE_AVX512_KERNEL_32(kernel_avx512_8x32, ROWS8)
DEFINE_AVX512_KERNEL_32(kernel_avx512_4x32, ROWS4)
DEFINE_AVX512_KERNEL_16(kernel_avx512_12x16, ROWS12)
DEFINE_AVX512_KERNEL_16(kernel_avx512_8x16, ROWS8)
DEFINE_AVX512_KERNEL_16(kernel_avx512_4x16, ROWS4)

/*
 * One column of a tile (the last of a B panel that few columns reach, as 49
 * positions of a 7 x 7 output leave): vectors along W's 12 rows instead of
 * along B's columns, so it costs one FMA per k rather than a 16-wide tile's
 * twelve.  Four accumulators keep the FMAs independent.
 */
__attribute__((target("avx512f"))) static void kernel_avx512_column(int64_t kc, const float *a,
                                                                     const float *b,
                                                                     const struct tile_io *io)
{
    const __mmask16 m = 0x0fff;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4, a += 48, b += 128) {
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a), _mm512_set1_ps(b[0]), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + 12), _mm512_set1_ps(b[32]), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + 24), _mm512_set1_ps(b[64]), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + 36), _mm512_set1_ps(b[96]), acc3);
    }
    for (; k < kc; k++, a += 12, b += 32)
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a), _mm512_set1_ps(b[0]), acc0);
    float sum[16];
    _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
    for (int r = 0; r < io->rows; r++) {
        float *c = io->c + r * io->ldc;
        float v;
        if (io->first)
            v = (io->bias ? io->bias[r] : 0.0f) + (io->res ? io->res[r * io->ldr] : 0.0f);
        else
            v = *c;
        v += sum[r];
        if (io->act == ACT_CLAMP || io->act == ACT_LOWER) {
            v = io->lo > v ? io->lo : v;
            v = io->hi < v ? io->hi : v;
        } else if (io->act == ACT_HARDSWISH) {
            const float h = v / 6.0f + 0.5f;
            v = v * (h < 0 ? 0.0f : h > 1 ? 1.0f : h);
        }
        *c = v;
    }
}

/* The AVX-512 kernel for a tile of `rows` x `cols` (<= 12 x 32): no more work than it needs. */
static micro_kernel avx512_for(int rows, int cols)
{
    if (cols > 16)
        return rows <= 4 ? kernel_avx512_4x32 : rows <= 8 ? kernel_avx512_8x32 : kernel_avx512;
    return rows <= 4 ? kernel_avx512_4x16 : rows <= 8 ? kernel_avx512_8x16 : kernel_avx512_12x16;
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(int64_t kc, const float *a,
                                                             const float *b,
                                                             const struct tile_io *io)
{
    const __m256 zero = _mm256_setzero_ps();
#define DECLARE(r) __m256 c##r##a = zero, c##r##b = zero;
    ROWS6(DECLARE)
#undef DECLARE
    for (int64_t k = 0; k < kc; k++, a += 6, b += 16) {
        PREFETCH_W(a);
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#define STEP(r)                                                                                    \
    {                                                                                              \
        const __m256 ar = _mm256_broadcast_ss(a + (r));                                            \
        c##r##a = _mm256_fmadd_ps(ar, b0, c##r##a);                                                \
        c##r##b = _mm256_fmadd_ps(ar, b1, c##r##b);                                                \
    }
        ROWS6(STEP)
#undef STEP
    }
#define STORE(r)                                                                                   \
    {                                                                                              \
        float *cr = io->c + (r) * io->ldc;                                                         \
        __m256 s0, s1;                                                                             \
        if (io->first) {                                                                           \
            s0 = s1 = io->bias ? _mm256_set1_ps(io->bias[r]) : zero;                               \
            if (io->res) {                                                                         \
                const float *rr = io->res + (r) * io->ldr;                                         \
                s0 = _mm256_add_ps(s0, _mm256_loadu_ps(rr));                                       \
                s1 = _mm256_add_ps(s1, _mm256_loadu_ps(rr + 8));                                   \
            }                                                                                      \
        } else {                                                                                   \
            s0 = _mm256_loadu_ps(cr);                                                              \
            s1 = _mm256_loadu_ps(cr + 8);                                                          \
        }                                                                                          \
        s0 = _mm256_add_ps(s0, c##r##a);                                                           \
        s1 = _mm256_add_ps(s1, c##r##b);                                                           \
        if (io->act == ACT_CLAMP || io->act == ACT_LOWER) {                                        \
            const __m256 lo = _mm256_set1_ps(io->lo), hi = _mm256_set1_ps(io->hi);                 \
            s0 = _mm256_min_ps(hi, _mm256_max_ps(lo, s0));                                         \
            s1 = _mm256_min_ps(hi, _mm256_max_ps(lo, s1));                                         \
        } else if (io->act == ACT_HARDSWISH) {                                                     \
            s0 = hardswish_avx2(s0);                                                               \
            s1 = hardswish_avx2(s1);                                                               \
        }                                                                                          \
        _mm256_storeu_ps(cr, s0);                                                                  \
        _mm256_storeu_ps(cr + 8, s1);                                                              \
    }
    ROWS6(STORE)
#undef STORE
}

/*
 * Packs rows [k0, k0 + kc) of the image's im2col matrix, for the output
 * positions of each panel (at most 32 consecutive ones, all in one output
 * row when the planes are wider than the output), into 32-column panels
 * (see the top of the file).  Row k is tap (kh, kw) of channel c,
 * k = (c * kernel_h + kh) * kernel_w + kw.
 */
__attribute__((target("avx512f"))) static void pack_image_avx512(
    float *dst, const struct mq_conv_gemm_image *im, int64_t k0, int64_t kc,
    const int64_t *panel_start, const int *panel_cols, int n_panels)
{
    const int64_t w = im->out_w, pw = im->plane_w, ph = im->plane_h, plane = ph * pw;
    const int64_t taps = im->kernel_h * im->kernel_w, phase = im->channels * plane;
    uint32_t row_mask[MAX_IMAGE_TAPS], col_mask[MAX_IMAGE_TAPS];
    int64_t row_shift[MAX_IMAGE_TAPS], col_shift[MAX_IMAGE_TAPS];
    int64_t tap_offset[MAX_IMAGE_TAPS * MAX_IMAGE_TAPS];
    /* floor division and modulo of each tap's offset by the stride: its phase and shift */
    int64_t row_phase[MAX_IMAGE_TAPS], col_phase[MAX_IMAGE_TAPS];
    for (int64_t kh = 0; kh < im->kernel_h; kh++) {
        const int64_t o = kh * im->dilation_h - im->pad_h, s = im->stride_h;
        row_shift[kh] = o >= 0 ? o / s : -((-o + s - 1) / s);
        row_phase[kh] = o - row_shift[kh] * s;
    }
    for (int64_t kw = 0; kw < im->kernel_w; kw++) {
        const int64_t o = kw * im->dilation_w - im->pad_w, s = im->stride_w;
        col_shift[kw] = o >= 0 ? o / s : -((-o + s - 1) / s);
        col_phase[kw] = o - col_shift[kw] * s;
    }
    for (int64_t kh = 0; kh < im->kernel_h; kh++)
        for (int64_t kw = 0; kw < im->kernel_w; kw++)
            tap_offset[kh * im->kernel_w + kw] =
                (row_phase[kh] * im->stride_w + col_phase[kw]) * phase + row_shift[kh] * pw +
                col_shift[kw];
    for (int np = 0; np < n_panels; np++, dst += kc * 32) {
        /* which of the panel's positions each tap row and tap column keeps */
        const int64_t p0 = panel_start[np];
        const int cols = panel_cols[np];
        for (int64_t kh = 0; kh < im->kernel_h; kh++)
            row_mask[kh] = 0;
        for (int64_t kw = 0; kw < im->kernel_w; kw++)
            col_mask[kw] = 0;
        for (int j = 0; j < cols; j++) {
            const int64_t oh = (p0 + j) / w, ow = (p0 + j) % w;
            for (int64_t kh = 0; kh < im->kernel_h; kh++) {
                const int64_t ih = oh + row_shift[kh];
                row_mask[kh] |= (uint32_t)(ih >= 0 && ih < ph) << j;
            }
            for (int64_t kw = 0; kw < im->kernel_w; kw++) {
                const int64_t iw = ow + col_shift[kw];
                col_mask[kw] |= (uint32_t)(iw >= 0 && iw < pw) << j;
            }
        }
        /* the panel's first position in the planes: its positions follow it there */
        const int64_t origin = (p0 / w) * pw + p0 % w;
        int64_t c = k0 / taps, t = k0 % taps;
        int64_t kh = t / im->kernel_w, kw = t % im->kernel_w;
        for (int64_t kk = 0; kk < kc; kk++) {
            const uint32_t mask = row_mask[kh] & col_mask[kw];
            /* the run may start or end outside the planes, on lanes the mask drops (masked
               loads never touch them): its address is formed as an integer, not by pointer
               arithmetic past the buffer */
            const int64_t offset = tap_offset[kh * im->kernel_w + kw] + c * plane + origin;
            const float *src =
                (const float *)((uintptr_t)im->data + (uintptr_t)offset * sizeof(float));
            _mm512_storeu_ps(dst + kk * 32, _mm512_maskz_loadu_ps((__mmask16)mask, src));
            _mm512_storeu_ps(dst + kk * 32 + 16,
                             _mm512_maskz_loadu_ps((__mmask16)(mask >> 16), src + 16));
            if (++kw == im->kernel_w) {
                kw = 0;
                if (++kh == im->kernel_h) {
                    kh = 0;
                    c++;
                }
            }
        }
    }
}

/* pack_block (below) for 32-column panels, partial ones by masked loads instead of memcpy. */
__attribute__((target("avx512f"))) static void pack_block_avx512(
    float *dst, const float *b, int64_t ldb, int64_t k0, int64_t kc, const int64_t *panel_start,
    const int *panel_cols, int n_panels)
{
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *row = b + (k0 + kk) * ldb;
        for (int np = 0; np < n_panels; np++) {
            float *d = dst + np * kc * 32 + kk * 32;
            const float *src = row + panel_start[np];
            const int cols = panel_cols[np];
            const __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
            const __mmask16 m1 = cols >= 32   ? (__mmask16)0xffff
                                 : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1)
                                             : (__mmask16)0;
            _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    }
}

#endif /* HAVE_X86_KERNELS */

/* The panel height of the kernel this CPU runs: 12 (AVX-512), 6 (AVX2 and FMA) or 0. */
static int detect(void)
{
#ifdef HAVE_X86_KERNELS
    enum mq_cpu_level level = mq_cpu_level();
    return level == MQ_CPU_AVX512 ? 12 : level == MQ_CPU_AVX2 ? 6 : 0;
#else
    return 0;
#endif
}

/* The kernel for this CPU (NULL when none) and its panel height, decided once. */
static int select_kernel(micro_kernel *kernel)
{
    int mr = detect();
    *kernel = NULL;
#ifdef HAVE_X86_KERNELS
    *kernel = mr == 12 ? kernel_avx512 : mr == 6 ? kernel_avx2 : NULL;
#endif
    return mr;
}

int mq_conv_gemm_available(void)
{
    micro_kernel k;
    return select_kernel(&k);
}

int mq_conv_gemm_pack(const float *w, int64_t groups, int64_t m, int64_t k,
                      struct mq_conv_gemm_weights *out, const char *what, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    micro_kernel kernel;
    int mr = select_kernel(&kernel);
    if (!mr)
        return mq_error_set(err, "%s: no packed GEMM kernel for this CPU", what);
    int64_t panels = (m + mr - 1) / mr;
    if (groups < 1 || m < 1 || k < 1 || panels > INT64_MAX / mr / k / groups ||
        (uint64_t)(groups * panels * mr * k) > SIZE_MAX / sizeof(float) / 2)
        return mq_error_set(err, "%s: weights of %lld x %lld x %lld are too large to pack", what,
                            (long long)groups, (long long)m, (long long)k);
    size_t count = (size_t)(groups * panels * mr * k);
    if (mq_memory_reserve(count * sizeof(float), what, err))
        return MQ_ERR_MEMORY;
    float *data = malloc(count * sizeof(float));
    if (!data) {
        mq_memory_release(count * sizeof(float));
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory packing weights", what);
    }
    /*
     * Group by group, k block by k block (as the GEMM walks them), panel by
     * panel: for each k of the block, the mr weights of rows p * mr ..
     * p * mr + mr - 1.  A k block of all panels is then one sequential
     * stream, which the hardware prefetchers follow: W is read from memory.
     */
    float *d = data;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t kc = k - k0 < KC ? k - k0 : KC;
            for (int64_t p = 0; p < panels; p++)
                for (int64_t kk = k0; kk < k0 + kc; kk++)
                    for (int64_t r = 0; r < mr; r++) {
                        int64_t row = p * mr + r;
                        *d++ = row < m ? w[(g * m + row) * k + kk] : 0.0f;
                    }
        }
    out->groups = groups;
    out->m = m;
    out->k = k;
    out->mr = mr;
    out->data = data;
    out->count = count;
    return MQ_OK;
}

void mq_conv_gemm_free(struct mq_conv_gemm_weights *pw)
{
    if (!pw || !pw->data)
        return;
    mq_memory_release(pw->count * sizeof(float));
    free(pw->data);
    memset(pw, 0, sizeof *pw);
}

/*
 * Rows [k0, k0 + kc) of B, for the columns of each panel (consecutive ones
 * from panel_start), into nr-column panels, zero-padded.  A full panel row
 * is 64 or 128 bytes: copied with a fixed-size loop the compiler turns into a
 * few vector moves (memcpy calls would cost more than the copy).
 */
static void pack_block(float *restrict dst, const float *restrict b, int64_t ldb, int64_t k0,
                       int64_t kc, const int64_t *panel_start, const int *panel_cols,
                       int n_panels, int nr)
{
    /* row by row of B, so that its reads are contiguous */
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *restrict row = b + (k0 + kk) * ldb;
        for (int np = 0; np < n_panels; np++) {
            float *restrict d = dst + np * kc * nr + kk * nr;
            const float *restrict src = row + panel_start[np];
            const int cols = panel_cols[np];
            if (cols == 32 && nr == 32) {
                for (int j = 0; j < 32; j++)
                    d[j] = src[j];
            } else if (cols == 16 && nr == 16) {
                for (int j = 0; j < 16; j++)
                    d[j] = src[j];
            } else {
                for (int j = 0; j < cols; j++)
                    d[j] = src[j];
                for (int j = cols; j < nr; j++)
                    d[j] = 0.0f;
            }
        }
    }
}

/*
 * An edge tile for a kernel that only takes full ones (AVX2): run on a
 * full-size tile whose valid part starts as Y's (or the residual's), then
 * copy that part back.
 */
static void edge_tile(micro_kernel kernel, int mr, int nr, int64_t kc, const float *a,
                      const float *b, const struct tile_io *io)
{
    float tile[MAX_MR * MAX_NR], res[MAX_MR * MAX_NR], bias[MAX_MR];
    struct tile_io t = *io;
    memset(tile, 0, sizeof tile);
    t.c = tile;
    t.ldc = nr;
    if (!io->first)
        for (int r = 0; r < io->rows; r++)
            memcpy(tile + r * nr, io->c + r * io->ldc, (size_t)io->cols * sizeof(float));
    if (io->first && io->res) {
        memset(res, 0, sizeof res);
        for (int r = 0; r < io->rows; r++)
            memcpy(res + r * nr, io->res + r * io->ldr, (size_t)io->cols * sizeof(float));
        t.res = res;
        t.ldr = nr;
    }
    if (io->first && io->bias) {
        memset(bias, 0, sizeof bias);
        memcpy(bias, io->bias, (size_t)io->rows * sizeof(float));
        t.bias = bias;
    }
    t.rows = mr;
    t.cols = nr;
    kernel(kc, a, b, &t);
    for (int r = 0; r < io->rows; r++)
        memcpy(io->c + r * io->ldc, tile + r * nr, (size_t)io->cols * sizeof(float));
}

/*
 * B's blocks come from a row-major matrix (b, ldb) or from an image (im2col
 * packed on the fly).  A block is up to NC / nr panels of consecutive
 * positions; with an image whose planes are wider than the output, no panel
 * crosses the end of an output row (row_width), since the planes' positions
 * jump there.
 */
static void gemm(const struct mq_conv_gemm_weights *pw, int64_t g, const float *b, int64_t ldb,
                 const struct mq_conv_gemm_image *image, int64_t n, int64_t row_width, float *y,
                 int64_t ldy, const float *bias, const float *res, int64_t ldr,
                 const struct mq_conv_gemm_act *act)
{
    micro_kernel kernel;
    const int mr = select_kernel(&kernel);
    if (!mr || mr != pw->mr || n <= 0)
        return;
    /* the AVX-512 kernels mask their edges; the AVX2 one needs full tiles (edge_tile) */
    const int nr = mr == 12 ? 32 : 16, masked = mr == 12;
    (void)masked;
    const int64_t m = pw->m, k = pw->k, panels = (m + mr - 1) / mr;
    const float *ap = pw->data + g * panels * mr * k;
    /* the packed B block: at most KC x NC floats, in L2 */
    static _Thread_local float block[KC * NC] __attribute__((aligned(64)));
    int64_t panel_start[NC / 16];
    int panel_cols[NC / 16];
    for (int64_t cursor = 0; cursor < n;) {
        int n_panels = 0;
        while (n_panels < NC / nr && cursor < n) {
            int64_t cols = n - cursor < nr ? n - cursor : nr;
            if (row_width && cols > row_width - cursor % row_width)
                cols = row_width - cursor % row_width;
            panel_start[n_panels] = cursor;
            panel_cols[n_panels++] = (int)cols;
            cursor += cols;
        }
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t kc = k - k0 < KC ? k - k0 : KC;
#ifdef HAVE_X86_KERNELS
            if (image)
                pack_image_avx512(block, image, k0, kc, panel_start, panel_cols, n_panels);
            else if (masked)
                pack_block_avx512(block, b, ldb, k0, kc, panel_start, panel_cols, n_panels);
            else
#endif
                pack_block(block, b, ldb, k0, kc, panel_start, panel_cols, n_panels, nr);
            struct tile_io io;
            io.first = k0 == 0;
            io.act = !act || k0 + kc < k   ? ACT_NONE
                     : act->hardswish      ? ACT_HARDSWISH
                     : act->hi == INFINITY ? ACT_LOWER
                                           : ACT_CLAMP;
            io.lo = act ? act->lo : 0.0f;
            io.hi = act ? act->hi : 0.0f;
            io.ldc = ldy;
            io.ldr = ldr;
            /* each panel of W (from memory: W can be megabytes) meets every panel of the
               block (in L2) while it is in L1 */
            for (int64_t p = 0; p < panels; p++) {
                const int64_t row = p * mr;
                const float *a = ap + (k0 * panels + p * kc) * mr;
                io.rows = (int)(m - row < mr ? m - row : mr);
                io.bias = bias ? bias + row : NULL;
                for (int np = 0; np < n_panels; np++) {
                    const int64_t col = panel_start[np];
                    io.cols = panel_cols[np];
                    io.c = y + row * ldy + col;
                    io.res = res ? res + row * ldr + col : NULL;
                    const float *bp = block + np * kc * nr;
#ifdef HAVE_X86_KERNELS
                    if (masked) {
                        /* up to 3 columns past a 16-column boundary: one by one */
                        const int wide = io.cols > 16 ? 16 : 0, left = io.cols - wide;
                        if (left > 3) {
                            avx512_for(io.rows, io.cols)(kc, a, bp, &io);
                            continue;
                        }
                        struct tile_io t = io;
                        if (wide) {
                            t.cols = wide;
                            avx512_for(io.rows, wide)(kc, a, bp, &t);
                        }
                        t.cols = 1;
                        for (int j = wide; j < io.cols; j++) {
                            t.c = io.c + j;
                            t.res = io.res ? io.res + j : NULL;
                            kernel_avx512_column(kc, a, bp + j, &t);
                        }
                        continue;
                    }
#endif
                    if (io.rows == mr && io.cols == nr)
                        kernel(kc, a, bp, &io);
                    else
                        edge_tile(kernel, mr, nr, kc, a, bp, &io);
                }
            }
        }
    }
}

void mq_conv_gemm_run(const struct mq_conv_gemm_weights *pw, int64_t g, const float *b,
                      int64_t ldb, int64_t n, float *y, int64_t ldy, const float *bias,
                      const float *res, int64_t ldr, const struct mq_conv_gemm_act *act)
{
    gemm(pw, g, b, ldb, NULL, n, 0, y, ldy, bias, res, ldr, act);
}

int mq_conv_gemm_image_supported(const struct mq_conv_gemm_image *image)
{
    micro_kernel kernel;
    /* the image packer fills 32-column panels: the AVX-512 kernel's */
    return select_kernel(&kernel) == 12 && image->kernel_h >= 1 &&
           image->kernel_h <= MAX_IMAGE_TAPS && image->kernel_w >= 1 &&
           image->kernel_w <= MAX_IMAGE_TAPS && image->plane_h >= 1 && image->out_h >= 1 &&
           image->out_w >= 1 && image->plane_w >= 1 && image->stride_h >= 1 &&
           image->stride_w >= 1;
}

void mq_conv_gemm_run_image(const struct mq_conv_gemm_weights *pw, int64_t g,
                            const struct mq_conv_gemm_image *image, float *y, int64_t ldy,
                            const float *bias, const float *res, int64_t ldr,
                            const struct mq_conv_gemm_act *act)
{
    if (!mq_conv_gemm_image_supported(image))
        return;
    gemm(pw, g, NULL, 0, image, image->out_h * image->out_w,
         image->plane_w != image->out_w ? image->out_w : 0, y, ldy, bias, res, ldr, act);
}

#ifdef HAVE_X86_KERNELS
/* Two vectors of outputs at a time (as many FMAs in flight as loads allow), then the tail. */
__attribute__((target("avx512f"))) static void taps_avx512(float *acc, const float *const *src,
                                                            const float *w, int taps, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (int t = 0; t < taps; t++) {
            const __m512 wt = _mm512_set1_ps(w[t]);
            s0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(src[t] + i), s0);
            s1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(src[t] + i + 16), s1);
        }
        _mm512_storeu_ps(acc + i, s0);
        _mm512_storeu_ps(acc + i + 16, s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 s0 = _mm512_setzero_ps();
        for (int t = 0; t < taps; t++)
            s0 = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(m, src[t] + i), s0);
        _mm512_mask_storeu_ps(acc + i, m, s0);
    }
}

/* HardSwish over y in place, 16 lanes at a time (the tail masked) */
__attribute__((target("avx512f"))) static void hardswish_rows_avx512(float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, hardswish_avx512(_mm512_maskz_loadu_ps(m, y + i)));
    }
}

__attribute__((target("avx2,fma"))) static void taps_avx2(float *acc, const float *const *src,
                                                           const float *w, int taps, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (int t = 0; t < taps; t++) {
            const __m256 wt = _mm256_broadcast_ss(w + t);
            s0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(src[t] + i), s0);
            s1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(src[t] + i + 8), s1);
        }
        _mm256_storeu_ps(acc + i, s0);
        _mm256_storeu_ps(acc + i + 8, s1);
    }
    for (; i < n; i++) {
        float s = 0.0f;
        for (int t = 0; t < taps; t++)
            s += w[t] * src[t][i];
        acc[i] = s;
    }
}
#endif

void mq_conv_hardswish_f32(float *y, int64_t n)
{
    micro_kernel kernel;
    int64_t i = 0;
#ifdef HAVE_X86_KERNELS
    if (select_kernel(&kernel) == 12) {
        hardswish_rows_avx512(y, n);
        return;
    }
#else
    (void)kernel;
#endif
    for (; i < n; i++) {
        const float x = y[i], v = x / 6.0f + 0.5f;
        y[i] = x * (v < 0 ? 0.0f : v > 1 ? 1.0f : v);
    }
}

int mq_conv_taps_f32(float *acc, const float *const *src, const float *w, int taps, int64_t n)
{
    micro_kernel kernel;
    int mr = select_kernel(&kernel);
    if (taps < 1 || taps > MQ_CONV_MAX_TAPS)
        return 0;
#ifdef HAVE_X86_KERNELS
    if (mr == 12) {
        taps_avx512(acc, src, w, taps, n);
        return 1;
    }
    if (mr == 6) {
        taps_avx2(acc, src, w, taps, n);
        return 1;
    }
#else
    (void)acc, (void)src, (void)w, (void)n, (void)mr;
#endif
    return 0;
}
