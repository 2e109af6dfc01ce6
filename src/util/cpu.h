/*
 * The widest vector instructions this CPU runs, found once: the one place the
 * run-time dispatch of the vector paths (observers, sums, kernels) asks.
 */
#ifndef MQ_UTIL_CPU_H
#define MQ_UTIL_CPU_H

enum mq_cpu_level {
    MQ_CPU_BASELINE = 0, /* what the build targets (SSE2 on x86-64) */
    MQ_CPU_AVX2 = 1,     /* AVX2 and FMA */
    MQ_CPU_AVX512 = 2,   /* AVX-512F (every such CPU also has AVX2 and FMA) */
};

/* The level of this CPU; MQ_CPU_BASELINE off x86-64 or where the compiler cannot ask. */
enum mq_cpu_level mq_cpu_level(void);

#endif
