/*
 * Byte-level copies for the data-movement kernels: a dense copy of any
 * strided view (slices, broadcasts, transpositions, tiles), an axis
 * permutation, and a fill with one element.  They work on elements of
 * `es` bytes, whatever the element type.
 */
#ifndef MQ_OPS_ELEMENT_COPY_H
#define MQ_OPS_ELEMENT_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* Twice the rank: Tile views its output as [r0, d0, r1, d1, ...]. */
#define MQ_ELEMENT_VIEW_MAX_RANK (2 * MQ_MAX_RANK)

/*
 * Fills dense dst (row-major over dims) from a strided view of src: the
 * element at index (i0, i1, ...) is src[sum(i_k * strides[k])] (in elements,
 * strides may be 0 or negative).  rank is at most MQ_ELEMENT_VIEW_MAX_RANK.
 */
void mq_element_copy_strided(void *dst, const void *src, size_t es, int rank,
                             const int64_t *dims, const int64_t *strides);

/* dst = src with its axes permuted: output axis k is input axis perm[k]. */
void mq_element_transpose(void *dst, const void *src, size_t es, int rank,
                          const int64_t *in_dims, const int *perm);

/* Writes n copies of the es-byte element `value`. */
void mq_element_fill(void *dst, const void *value, int64_t n, size_t es);

#endif
