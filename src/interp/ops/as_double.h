/*
 * Whole-tensor conversion to and from double, for kernels whose arithmetic is
 * not the hot path of a model (signal processing, sampling, Det) but whose
 * spec allows many element types.  One typed loop per call keeps the
 * kernels' inner loops free of per-element type dispatch.
 */
#ifndef MQ_OPS_AS_DOUBLE_H
#define MQ_OPS_AS_DOUBLE_H

#include "core/tensor.h"

/* 1 when the dtype is one the two functions below handle. */
int mq_as_double_supported(int dtype);
/* Copies t's count elements into dst as doubles; MQ_ERR for unsupported types. */
int mq_as_double_load(const struct mq_tensor *t, double *dst);
/* t's elements in a fresh malloc'd buffer (count + 1 doubles); NULL when out of memory or of an
 * unsupported type.  The caller frees it. */
double *mq_as_double_copy(const struct mq_tensor *t);
/*
 * Writes count doubles into t (already allocated).  Integers truncate toward
 * zero like numpy's astype and saturate at the type's limits (NaN becomes 0);
 * bool is value != 0.
 */
int mq_as_double_store(struct mq_tensor *t, const double *src);

#endif
