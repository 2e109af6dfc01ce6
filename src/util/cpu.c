/* The CPU's vector level (util/cpu.h), asked of the compiler's CPU probe once and cached. */
#include "util/cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <stdatomic.h>

enum mq_cpu_level mq_cpu_level(void)
{
    /* every thread that finds it unset computes the same value: storing it twice is harmless */
    static atomic_int cached = -1;
    int level = atomic_load_explicit(&cached, memory_order_relaxed);
    if (level < 0) {
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx512f")                                     ? MQ_CPU_AVX512
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? MQ_CPU_AVX2
                                                                                  : MQ_CPU_BASELINE;
        atomic_store_explicit(&cached, level, memory_order_relaxed);
    }
    return (enum mq_cpu_level)level;
}
#else
enum mq_cpu_level mq_cpu_level(void)
{
    return MQ_CPU_BASELINE;
}
#endif
