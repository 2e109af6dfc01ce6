/*
 * Row-major GEMM through BLAS, C = alpha * op(A) * op(B) + beta * C, that
 * sends the single-row and single-column products to GEMV: OpenBLAS's GEMM
 * packs both operands even when one is a vector, which makes a batch-1 fully
 * connected layer two to three times slower than GEMV on the same weights.
 * Dimensions must already fit in int (the callers check).
 *
 * With beta = 0, C may hold garbage on entry (outputs are not zero-filled):
 * GEMM stores zeros for beta = 0, but GEMV scales y by beta, which some
 * OpenBLAS versions do as a multiplication (NaN * 0 = NaN), so the GEMV
 * paths clear their output row or column first.
 */
#ifndef MQ_OPS_GEMM_H
#define MQ_OPS_GEMM_H

#include <cblas.h>

#define MQ_DEFINE_GEMM(T, SFX, GEMM, GEMV)                                                       \
    static inline void mq_gemm_##SFX(int trans_a, int trans_b, int m, int n, int k, T alpha,    \
                                     const T *a, int lda, const T *b, int ldb, T beta, T *c,      \
                                     int ldc)                                                    \
    {                                                                                            \
        if (m == 1) {                                                                            \
            /* c[0, :] = op(B)^T a, with a's k values lda apart when transposed */               \
            int inc_a = trans_a ? lda : 1;                                                       \
            if (beta == 0)                                                                       \
                for (int j = 0; j < n; j++)                                                      \
                    c[j] = 0;                                                                    \
            if (trans_b)                                                                         \
                GEMV(CblasRowMajor, CblasNoTrans, n, k, alpha, b, ldb, a, inc_a, beta, c, 1);    \
            else                                                                                 \
                GEMV(CblasRowMajor, CblasTrans, k, n, alpha, b, ldb, a, inc_a, beta, c, 1);      \
            return;                                                                              \
        }                                                                                        \
        if (n == 1) {                                                                            \
            /* c[:, 0] = op(A) b, with b's k values ldb apart unless transposed */               \
            int inc_b = trans_b ? 1 : ldb;                                                       \
            if (beta == 0)                                                                       \
                for (int i = 0; i < m; i++)                                                      \
                    c[(size_t)i * (size_t)ldc] = 0;                                              \
            if (trans_a)                                                                         \
                GEMV(CblasRowMajor, CblasTrans, k, m, alpha, a, lda, b, inc_b, beta, c, ldc);    \
            else                                                                                 \
                GEMV(CblasRowMajor, CblasNoTrans, m, k, alpha, a, lda, b, inc_b, beta, c, ldc);  \
            return;                                                                              \
        }                                                                                        \
        GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,                                 \
             trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); \
    }

MQ_DEFINE_GEMM(float, f32, cblas_sgemm, cblas_sgemv)
MQ_DEFINE_GEMM(double, f64, cblas_dgemm, cblas_dgemv)

#endif
