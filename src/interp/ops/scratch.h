/*
 * Short-lived kernel scratch buffers (im2col columns, widened parameters):
 * sizes are overflow-checked and counted against the memory cap like tensors.
 */
#ifndef MQ_OPS_SCRATCH_H
#define MQ_OPS_SCRATCH_H

#include <stdint.h>
#include <stdlib.h>

#include "interp/kernel.h"
#include "core/tensor.h"

/* NULL with err filled when count * elem overflows, passes the cap or malloc fails. */
static inline void *mq_scratch_alloc(const struct mq_kernel_node *node, int64_t count, size_t elem,
                                     struct mq_error *err)
{
    if (count < 0 || elem == 0 || (uint64_t)count > SIZE_MAX / 2 / elem) {
        mq_error_set(err, "node '%s' (%s): scratch buffer of %lld elements is too large",
                     node->name, node->op_type, (long long)count);
        return NULL;
    }
    uint64_t bytes = (uint64_t)count * elem;
    if (bytes == 0)
        bytes = elem;
    if (mq_memory_reserve(bytes, node->name, err))
        return NULL;
    void *p = malloc((size_t)bytes);
    if (!p) {
        mq_memory_release(bytes);
        mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory allocating %llu bytes "
                      "of scratch", node->name, node->op_type, (unsigned long long)bytes);
    }
    return p;
}

static inline void mq_scratch_free(void *p, int64_t count, size_t elem)
{
    if (!p)
        return;
    uint64_t bytes = (uint64_t)count * elem;
    mq_memory_release(bytes == 0 ? elem : bytes);
    free(p);
}

#endif
