/* A dense tensor as every layer sees it (the core type under model/ and interp/), its element
   types and the memory budget its allocations draw on. */
#ifndef MQ_CORE_TENSOR_H
#define MQ_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Element types use the values of ONNX TensorProto.DataType. */
enum mq_dtype {
    MQ_DTYPE_UNDEFINED = 0,
    MQ_DTYPE_FLOAT = 1,
    MQ_DTYPE_UINT8 = 2,
    MQ_DTYPE_INT8 = 3,
    MQ_DTYPE_UINT16 = 4,
    MQ_DTYPE_INT16 = 5,
    MQ_DTYPE_INT32 = 6,
    MQ_DTYPE_INT64 = 7,
    MQ_DTYPE_STRING = 8,
    MQ_DTYPE_BOOL = 9,
    MQ_DTYPE_FLOAT16 = 10,
    MQ_DTYPE_DOUBLE = 11,
    MQ_DTYPE_UINT32 = 12,
    MQ_DTYPE_UINT64 = 13,
    MQ_DTYPE_BFLOAT16 = 16,
    MQ_DTYPE_FLOAT8E4M3FN = 17,
    MQ_DTYPE_FLOAT8E4M3FNUZ = 18,
    MQ_DTYPE_FLOAT8E5M2 = 19,
    MQ_DTYPE_FLOAT8E5M2FNUZ = 20,
    MQ_DTYPE_UINT4 = 21,
    MQ_DTYPE_INT4 = 22,
    MQ_DTYPE_FLOAT4E2M1 = 23,
    MQ_DTYPE_FLOAT8E8M0 = 24,
    MQ_DTYPE_UINT2 = 25,
    MQ_DTYPE_INT2 = 26,
};

#define MQ_MAX_RANK 12

struct mq_tensor {
    int dtype;                  /* enum mq_dtype */
    int rank;                   /* 0 for a scalar */
    int64_t dims[MQ_MAX_RANK];
    int64_t count;              /* product of dims; 1 for a scalar */
    void *data;                 /* count elements of dtype; NULL only when count is 0 */
    int borrowed;               /* data belongs to someone else (a plan constant): never freed */
};

/* Bytes per element in memory (interp/dtype.h's table: narrow types take a byte each), 0 for
   types the interpreter cannot hold (string, complex). */
size_t mq_dtype_size(int dtype);
/* "float32", "int64", ... as numpy spells them; "dtype(N)" for unknown values. */
const char *mq_dtype_name(int dtype);
int mq_dtype_is_float(int dtype); /* float32, float16, double, bfloat16 */

/* Product of dims with overflow and negativity checks; -1 when invalid. */
int64_t mq_dims_count(int rank, const int64_t *dims);

/*
 * Allocates a zero-filled tensor.  Checks the element count for overflow and
 * the byte size against the memory cap; the message names `what` (a tensor or
 * node name) so the user knows which tensor was too big.
 */
int mq_tensor_alloc(struct mq_tensor *t, int dtype, int rank, const int64_t *dims,
                    const char *what, struct mq_error *err);
/* Same shape and type as `like`, fresh buffer. */
int mq_tensor_alloc_like(struct mq_tensor *t, const struct mq_tensor *like, const char *what,
                         struct mq_error *err);
/*
 * mq_tensor_alloc without the zero fill, for kernels that write every element
 * of the output themselves: zeroing a buffer that is overwritten anyway costs
 * a full pass over it (and the page faults of touching it twice).
 */
int mq_tensor_alloc_uninit(struct mq_tensor *t, int dtype, int rank, const int64_t *dims,
                           const char *what, struct mq_error *err);
int mq_tensor_alloc_uninit_like(struct mq_tensor *t, const struct mq_tensor *like,
                                const char *what, struct mq_error *err);
/* Deep copy (the copy is never borrowed). */
int mq_tensor_copy(struct mq_tensor *dst, const struct mq_tensor *src, const char *what,
                   struct mq_error *err);
/* A view sharing src's buffer: borrowed, dims may differ (count must match). */
void mq_tensor_view(struct mq_tensor *dst, const struct mq_tensor *src);
void mq_tensor_free(struct mq_tensor *t);
/* Moves src into dst (dst must be empty); src becomes empty. */
void mq_tensor_move(struct mq_tensor *dst, struct mq_tensor *src);

/* Shape helpers. "[1,3,224,224]" into buf. */
const char *mq_shape_format(int rank, const int64_t *dims, char *buf, size_t size);
int mq_shape_equal(const struct mq_tensor *a, const struct mq_tensor *b);

/* Element i as double / int64, whatever the dtype (for shape inputs, comparisons). */
double mq_tensor_get_double(const struct mq_tensor *t, int64_t i);
int64_t mq_tensor_get_int64(const struct mq_tensor *t, int64_t i);

/*
 * numpy has no bfloat16, so tools built on it (the ONNX backend test data among
 * them) store bfloat16 tensors as uint16 bits.  When a value's declared type is
 * bfloat16 and the file says uint16, relabel it.
 */
void mq_tensor_adopt_declared_bfloat16(struct mq_tensor *t, int declared_dtype);

/* IEEE half <-> float, round-to-nearest-even. */
float mq_half_to_float(uint16_t h);
uint16_t mq_float_to_half(float f);
float mq_bfloat16_to_float(uint16_t h);
uint16_t mq_float_to_bfloat16(float f);
/* Saturating double -> int64: NaN gives 0, out-of-range values clamp (a plain cast out of
   range is undefined). */
static inline int64_t mq_double_to_int64_sat(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

/*
 * Memory cap for tensor buffers, shared by all threads.  0 means no cap.
 * mq_tensor_alloc counts bytes in and mq_tensor_free counts them out.
 */
void mq_memory_set_limit(uint64_t bytes);
uint64_t mq_memory_limit(void);
uint64_t mq_memory_in_use(void);
/* Reserve/release raw bytes against the cap (scratch buffers, models). */
int mq_memory_reserve(uint64_t bytes, const char *what, struct mq_error *err);
void mq_memory_release(uint64_t bytes);

#endif
