/*
 * Byte-level copies for the data-movement kernels (interp/ops/element_copy.h):
 * strided views collapsed into long memcpy runs or cache-sized 2-D transpose
 * tiles, and fills with one element.
 */
#include "interp/ops/element_copy.h"

#include <string.h>

#include "interp/ops/shape_util.h"

#define ROW_GATHER(T)                                                                              \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = s[i * stride];                                                                  \
    }                                                                                              \
    break;

/* dst[i] = src[i * stride] for i < n; stride 0 repeats one element. */
static void copy_row(void *dst, const void *src, int64_t n, int64_t stride, size_t es)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: ROW_GATHER(uint8_t)
    case 2: ROW_GATHER(uint16_t)
    case 4: ROW_GATHER(uint32_t)
    case 8: ROW_GATHER(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)es, (const char *)src + i * stride * (int64_t)es,
                   es);
    }
}

enum { TILE = 32 };

#define BLOCK_TRANSPOSE(T)                                                                         \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        for (int64_t jb = 0; jb < nj; jb += TILE) {                                                \
            int64_t je = jb + TILE < nj ? jb + TILE : nj;                                          \
            for (int64_t lb = 0; lb < nl; lb += TILE) {                                            \
                int64_t le = lb + TILE < nl ? lb + TILE : nl;                                      \
                for (int64_t l = lb; l < le; l++)                                                  \
                    for (int64_t j = jb; j < je; j++)                                              \
                        d[j * dst_j + l] = s[j + l * src_l];                                       \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    break;

/*
 * A 2-D transpose in cache-sized tiles: the source is contiguous along j
 * (stride 1) and strided along l, the destination the other way round.
 */
static void copy_block(void *dst, const void *src, int64_t nj, int64_t nl, int64_t dst_j,
                       int64_t src_l, size_t es)
{
    switch (es) {
    case 1: BLOCK_TRANSPOSE(uint8_t)
    case 2: BLOCK_TRANSPOSE(uint16_t)
    case 4: BLOCK_TRANSPOSE(uint32_t)
    case 8: BLOCK_TRANSPOSE(uint64_t)
    default:
        for (int64_t l = 0; l < nl; l++)
            for (int64_t j = 0; j < nj; j++)
                memcpy((char *)dst + (j * dst_j + l) * (int64_t)es,
                       (const char *)src + (j + l * src_l) * (int64_t)es, es);
    }
}

/*
 * Fills dense dst (row-major over dims) from a strided view of src: the
 * element at index (i0, i1, ...) is src[sum(i_k * strides[k])] (in elements,
 * strides may be 0 or negative).  Axes of size 1 are dropped and adjacent
 * axes that are contiguous in src are merged first, so reshapes, slices of
 * whole rows and broadcasts collapse to a few long memcpy runs.
 */
void mq_element_copy_strided(void *dst, const void *src, size_t es, int rank,
                             const int64_t *dims_in, const int64_t *strides_in)
{
    int64_t dims[MQ_ELEMENT_VIEW_MAX_RANK], strides[MQ_ELEMENT_VIEW_MAX_RANK];
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims_in[i] == 0)
            return;
        if (dims_in[i] == 1)
            continue;
        if (r > 0 && strides[r - 1] == strides_in[i] * dims_in[i]) {
            dims[r - 1] *= dims_in[i];
            strides[r - 1] = strides_in[i];
            continue;
        }
        dims[r] = dims_in[i];
        strides[r] = strides_in[i];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, es);
        return;
    }
    int last = r - 1;
    int64_t dst_strides[MQ_ELEMENT_VIEW_MAX_RANK];
    ops_strides(r, dims, dst_strides);
    const char *s = (const char *)src;
    char *d = (char *)dst;

    /* A transposition: some outer axis is the contiguous one in the source. */
    int j = -1;
    if (strides[last] != 1 && strides[last] != 0)
        for (int k = last - 1; k >= 0; k--)
            if (strides[k] == 1) {
                j = k;
                break;
            }
    if (j >= 0 && dims[j] >= 4) {
        int outer[MQ_ELEMENT_VIEW_MAX_RANK], n_outer = 0;
        for (int k = 0; k < last; k++)
            if (k != j)
                outer[n_outer++] = k;
        int64_t idx[MQ_ELEMENT_VIEW_MAX_RANK] = {0};
        int64_t src_off = 0, dst_off = 0;
        for (;;) {
            copy_block(d + dst_off * (int64_t)es, s + src_off * (int64_t)es, dims[j], dims[last],
                       dst_strides[j], strides[last], es);
            int k = n_outer - 1;
            for (; k >= 0; k--) {
                int a = outer[k];
                idx[a]++;
                src_off += strides[a];
                dst_off += dst_strides[a];
                if (idx[a] < dims[a])
                    break;
                src_off -= strides[a] * dims[a];
                dst_off -= dst_strides[a] * dims[a];
                idx[a] = 0;
            }
            if (k < 0)
                return;
        }
    }

    int64_t n = dims[last];
    int64_t idx[MQ_ELEMENT_VIEW_MAX_RANK] = {0};
    int64_t src_off = 0;
    for (;;) {
        copy_row(d, s + src_off * (int64_t)es, n, strides[last], es);
        d += n * (int64_t)es;
        int k = last - 1;
        for (; k >= 0; k--) {
            idx[k]++;
            src_off += strides[k];
            if (idx[k] < dims[k])
                break;
            src_off -= strides[k] * dims[k];
            idx[k] = 0;
        }
        if (k < 0)
            return;
    }
}

/* dst = src with its axes permuted: output axis k is input axis perm[k]. */
void mq_element_transpose(void *dst, const void *src, size_t es, int rank, const int64_t *in_dims,
                          const int *perm)
{
    int64_t in_strides[MQ_ELEMENT_VIEW_MAX_RANK], dims[MQ_ELEMENT_VIEW_MAX_RANK];
    int64_t strides[MQ_ELEMENT_VIEW_MAX_RANK];
    ops_strides(rank, in_dims, in_strides);
    for (int k = 0; k < rank; k++) {
        dims[k] = in_dims[perm[k]];
        strides[k] = in_strides[perm[k]];
    }
    mq_element_copy_strided(dst, src, es, rank, dims, strides);
}

#define FILL_PATTERN(T)                                                                            \
    {                                                                                              \
        T v;                                                                                       \
        memcpy(&v, value, sizeof v);                                                               \
        T *d = (T *)dst;                                                                           \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = v;                                                                              \
    }                                                                                              \
    break;

/* Writes n copies of the es-byte element `value`. */
void mq_element_fill(void *dst, const void *value, int64_t n, size_t es)
{
    switch (es) {
    case 1: memset(dst, *(const uint8_t *)value, (size_t)n); break;
    case 2: FILL_PATTERN(uint16_t)
    case 4: FILL_PATTERN(uint32_t)
    case 8: FILL_PATTERN(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)es, value, es);
    }
}
