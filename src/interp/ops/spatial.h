/*
 * Window geometry shared by Conv, ConvTranspose and the pooling ops: the
 * kernel_shape / strides / dilations / pads / auto_pad attributes, parsed once
 * at plan time and resolved against the input's spatial shape at run time.
 */
#ifndef MQ_OPS_SPATIAL_H
#define MQ_OPS_SPATIAL_H

#include <stdint.h>

#include "interp/kernel.h"

enum mq_auto_pad {
    MQ_AUTO_PAD_NOTSET = 0,
    MQ_AUTO_PAD_SAME_UPPER,
    MQ_AUTO_PAD_SAME_LOWER,
    MQ_AUTO_PAD_VALID,
};

struct mq_spatial {
    int auto_pad;                     /* enum mq_auto_pad */
    int n_kernel;                     /* lengths as given; -1 when the attribute is absent */
    int n_strides;
    int n_dilations;
    int n_pads;                       /* 2 * spatial rank when given */
    int64_t kernel[MQ_MAX_RANK];
    int64_t strides[MQ_MAX_RANK];
    int64_t dilations[MQ_MAX_RANK];
    int64_t pads[2 * MQ_MAX_RANK];    /* begins then ends, as ONNX lists them */
};

/*
 * Splits a total padding between the two ends of an axis: SAME_UPPER puts the
 * odd unit at the end, otherwise (SAME_LOWER) at the beginning.
 */
static inline void mq_spatial_split_pad(int64_t total, int same_upper, int64_t *begin,
                                        int64_t *end)
{
    if (same_upper) {
        *begin = total / 2;
        *end = total - *begin;
    } else {
        *end = total / 2;
        *begin = total - *end;
    }
}

/* Reads and checks the attributes (values positive, pads non-negative, lengths sane). */
int mq_spatial_parse(const struct mq_kernel_node *node, struct mq_spatial *s, int allow_dilations,
                     struct mq_error *err);

/* Checks that every given attribute has one value per spatial axis. */
int mq_spatial_check_rank(const struct mq_kernel_node *node, const struct mq_spatial *s, int n,
                          struct mq_error *err);

/*
 * Output extent and padding of a forward window (Conv, pooling) on n spatial
 * axes.  kernel[] is the kernel extent per axis (from W or kernel_shape).
 * ceil_mode rounds the output up; a window that would start inside the end
 * padding is dropped, as onnxruntime and PyTorch do.  Fills strides[] and
 * dilations[] with the resolved values (defaults 1).
 */
int mq_spatial_forward(const struct mq_kernel_node *node, const struct mq_spatial *s, int n,
                       const int64_t *in, const int64_t *kernel, int ceil_mode, int64_t *out,
                       int64_t *pad_begin, int64_t *pad_end, int64_t *strides,
                       int64_t *dilations, struct mq_error *err);

#endif
