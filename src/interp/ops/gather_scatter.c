#include "interp/kernel.h"

const struct mq_kernel mq_kernels_gather_scatter[] = {
    {0},
};
