/*
 * HardSigmoid run on its input's integer codes (hardsigmoid_codes.c): the arithmetic, kept
 * apart from the graph so that it can be tested on its own.
 *
 * HardSigmoid(x) = clamp(alpha * x + beta, 0, 1).  With x quantized as s * (q - z),
 * alpha * x + beta = (alpha * s) * (q - z_h) with z_h = z - beta / (alpha * s).  When
 * beta / (alpha * s) is an integer k, the same codes q read with scale alpha * s and zero point
 * z - k are exactly alpha * x + beta, and the clamp to [0, 1] is a clamp of the codes to
 * [z - k, z - k + 1 / (alpha * s)].  So the input's scale is chosen as (beta / alpha) / k.
 */
#ifndef MQ_HARDSIGMOID_CODES_H
#define MQ_HARDSIGMOID_CODES_H

#include <stddef.h>
#include <stdint.h>

#include "quant/params.h"

/* Fewest steps of the input's scale between the lower clamp and zero: k below it would
   coarsen the input's calibrated scale by more than 1 / 8. */
#define MQ_CODES_MIN_STEPS 8
/* How much the input's range may widen to reach the lower clamp -beta / alpha. */
#define MQ_CODES_MAX_WIDEN 1.25

struct mq_codes_plan {
    struct mq_qparams x;    /* the input's: scale (beta / alpha) / k, zero point */
    float lo;               /* the input's range start, widened to -beta / alpha if need be */
    int k;                  /* beta / (alpha * x.scale) */
    int widened;            /* lo moved down to reach the lower clamp */
    struct mq_qparams h;    /* the output's: scale alpha * x.scale, zero point x.zero_point - k */
    int32_t clip_lo, clip_hi; /* the codes the Clip keeps */
    int upper_rounded;      /* (1 - beta) / (alpha * x.scale) was not an integer: rounded */
};

/*
 * The plan for an input calibrated to [lo, hi], quantized over `qr` (symmetric or not) into a
 * type whose full range is `full`.  1 when it applies; 0 with why (a sentence fragment) when
 * it does not: alpha not positive, beta outside (0, 1), a range that would widen by more than
 * MQ_CODES_MAX_WIDEN to reach the lower clamp, or fewer than MQ_CODES_MIN_STEPS steps.
 */
int mq_quant_codes_plan(float alpha, float beta, float lo, float hi, struct mq_qrange qr,
                        struct mq_qrange full, int symmetric, struct mq_codes_plan *out,
                        char *why, size_t why_size);

/* The output side of a plan (h, clip_lo, clip_hi, upper_rounded) from the input's
   parameters and k; 0 when the zero point z - k falls outside `full`. */
int mq_quant_codes_output(float alpha, float beta, struct mq_qparams x, int k,
                          struct mq_qrange full, struct mq_codes_plan *out);

#endif
