#include "interp/kernel.h"

const struct mq_kernel mq_kernels_resize[] = {
    {0},
};
