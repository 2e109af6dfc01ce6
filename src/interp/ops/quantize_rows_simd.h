/*
 * The body of one vector implementation of the row kernels (quantize_rows.c includes it once
 * per instruction set, after defining the macros below for it).  Every value goes through the
 * same steps as the scalar formula; the tails shorter than a vector take the scalar code.
 *
 *   QR_NAME(x)        x with the instruction set's suffix
 *   QR_TARGET         the function attribute enabling the instruction set (may be empty)
 *   QR_V, QR_W        float vector type and its lanes
 *   QR_LOADU, QR_STOREU, QR_SET1, QR_ADD, QR_SUB, QR_MUL, QR_DIV, QR_ABS
 *   QR_MAX, QR_MIN    the x86 max/min: the second operand when either is NaN
 *   QR_FMADD(a, b, c) a * b + c, fused or not
 *   QR_ANY_GE(a, b)   some lane has a >= b
 *   QR_STORE_<T>(p, v)  v (integral, in T's range) stored as W values of T
 *   QR_WIDEN_<T>(p)     W values of T read as floats
 *   QR_ZEROUPPER()    clears the upper halves of the vector registers before the scalar tail
 *                     (GCC leaves them dirty before a tail call, and SSE code after runs slow)
 */

/*
 * q - zero for each lane of xv, as an integral float (never -0): the quotient saturated to
 * [lo - zero, hi - zero] (NaN to lo - zero: max returns its second operand then), rounded.
 */
QR_TARGET static inline QR_V QR_NAME(steps)(QR_V xv, const struct row_params *r)
{
    const QR_V magic = QR_SET1(ROUND_MAGIC), lo = QR_SET1(r->lo_steps), hi = QR_SET1(r->hi_steps);
    if (r->use_recip) {
        QR_V c = QR_MIN(QR_MAX(QR_MUL(xv, QR_SET1(r->recip)), lo), hi);
        QR_V rc = QR_SUB(QR_ADD(c, magic), magic);
        /* how near c lies to a half-integer, against the tolerance */
        QR_V near = QR_FMADD(QR_ABS(c), QR_SET1(TIE_TOLERANCE), QR_ABS(QR_SUB(c, rc)));
        if (!QR_ANY_GE(near, QR_SET1(0.5f)))
            return rc;
    }
    QR_V c = QR_MIN(QR_MAX(QR_DIV(xv, QR_SET1(r->scale)), lo), hi);
    return QR_SUB(QR_ADD(c, magic), magic);
}

#define QR_QUANTIZE_LOOP(T, STORE)                                                            \
    for (; k + QR_W <= n; k += QR_W)                                                          \
        STORE((T *)q + k, QR_ADD(QR_NAME(steps)(QR_LOADU(x + k), &r), vz))

QR_TARGET static void QR_NAME(quantize)(const float *x, int64_t n, float scale, int32_t zero,
                                        int storage, void *q)
{
    struct row_params r;
    row_params_init(&r, scale, zero, storage);
    const QR_V vz = QR_SET1(r.zero);
    int64_t k = 0;
    switch (storage) {
    case MQ_DTYPE_UINT8: QR_QUANTIZE_LOOP(uint8_t, QR_STORE_UINT8); break;
    case MQ_DTYPE_INT8: QR_QUANTIZE_LOOP(int8_t, QR_STORE_INT8); break;
    case MQ_DTYPE_UINT16: QR_QUANTIZE_LOOP(uint16_t, QR_STORE_UINT16); break;
    case MQ_DTYPE_INT16: QR_QUANTIZE_LOOP(int16_t, QR_STORE_INT16); break;
    default: break;
    }
    QR_ZEROUPPER();
    quantize_scalar_from(x, k, n, &r, storage, q);
}

#undef QR_QUANTIZE_LOOP

QR_TARGET static void QR_NAME(fake_quantize)(const float *x, int64_t n, float scale,
                                             int32_t zero, int storage, float *y)
{
    struct row_params r;
    row_params_init(&r, scale, zero, storage);
    int64_t k = 0;
    /* q - zero as a float is (float)(q - zero) exactly: both integers below 2^17, +0 for 0 */
    for (; k + QR_W <= n; k += QR_W)
        QR_STOREU(y + k, QR_MUL(QR_NAME(steps)(QR_LOADU(x + k), &r), QR_SET1(scale)));
    QR_ZEROUPPER();
    fake_quantize_scalar_from(x, k, n, &r, y);
}

#define QR_DEQUANTIZE_LOOP(T, WIDEN)                                                          \
    for (; k + QR_W <= n; k += QR_W)                                                          \
        QR_STOREU(y + k, QR_MUL(QR_SUB(WIDEN((const T *)q + k), vz), vs))

QR_TARGET static void QR_NAME(dequantize)(const void *q, int64_t n, float scale, int32_t zero,
                                          int storage, float *y)
{
    /* q - zero in float is exact (both integers below 2^17), as (float)(q - zero) is */
    const QR_V vz = QR_SET1((float)zero), vs = QR_SET1(scale);
    int64_t k = 0;
    switch (storage) {
    case MQ_DTYPE_UINT8: QR_DEQUANTIZE_LOOP(uint8_t, QR_WIDEN_UINT8); break;
    case MQ_DTYPE_INT8: QR_DEQUANTIZE_LOOP(int8_t, QR_WIDEN_INT8); break;
    case MQ_DTYPE_UINT16: QR_DEQUANTIZE_LOOP(uint16_t, QR_WIDEN_UINT16); break;
    case MQ_DTYPE_INT16: QR_DEQUANTIZE_LOOP(int16_t, QR_WIDEN_INT16); break;
    default: break;
    }
    QR_ZEROUPPER();
    dequantize_scalar_from(q, k, n, scale, zero, storage, y);
}

#undef QR_DEQUANTIZE_LOOP

static const struct mq_qrows_ops QR_NAME(ops) = {
    QR_ISA_NAME, QR_NAME(quantize), QR_NAME(fake_quantize), QR_NAME(dequantize)};
