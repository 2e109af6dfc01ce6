/*
 * MQ_VECTOR_LOOP(i, n, body): runs `body` for i = 0 .. n-1 (i is a const
 * int64_t inside it) in a form compilers vectorise at -O2.
 *
 * gcc 12 at -O2 uses its "very cheap" vectoriser, which skips loops whose
 * trip count is unknown; it does vectorise straight-line code, so the loop
 * runs in blocks of eight lanes whose constant-count inner loop unrolls into
 * one SIMD statement, then a scalar tail.  Pointers the body writes through
 * should be `restrict` so that no aliasing check is needed.
 */
#ifndef MQ_OPS_VECTOR_LOOP_H
#define MQ_OPS_VECTOR_LOOP_H

#include <stdint.h>

#define MQ_VECTOR_LOOP(i, n, ...)                                                                \
    do {                                                                                         \
        int64_t i##_block = 0;                                                                   \
        const int64_t i##_count = (n);                                                           \
        for (; i##_block + 8 <= i##_count; i##_block += 8)                                       \
            for (int i##_lane = 0; i##_lane < 8; i##_lane++) {                                   \
                const int64_t i = i##_block + i##_lane;                                          \
                __VA_ARGS__;                                                                     \
            }                                                                                    \
        for (int64_t i = i##_block; i < i##_count; i++) {                                        \
            __VA_ARGS__;                                                                         \
        }                                                                                        \
    } while (0)

/*
 * MQ_SIMD_CLONES before a hot row helper compiles it twice, for AVX2 and for
 * the baseline, and picks one at load time: the project targets plain x86-64
 * (SSE2, 4 floats a step), while the machines it runs on have 8-wide AVX2.
 */
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 6))
#define MQ_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MQ_SIMD_CLONES
#endif

#endif
