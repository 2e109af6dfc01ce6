/*
 * Weight-only quantization (--weight-only): each selected MatMul whose B is a constant 2-D
 * float weight [K, N] gets B quantized block-wise along K (one scale, and for unsigned types
 * one zero point, per block of `block_size` values of a column), activations staying float.
 * Written as com.microsoft MatMulNBits (default) or, with format_qdq, as an opset-21 blocked
 * DequantizeLinear feeding the original MatMul.  Each selected Gather of rows of a constant
 * 2-D float table (an embedding) gets its table quantized the same way along its rows
 * (weight_only_gather.c).
 *
 * Two ways to choose the quantized values: round to nearest (default), or GPTQ, which rounds
 * one row of B at a time and moves each row's rounding error onto the rows not yet rounded,
 * weighted by the inverse Hessian X^T X of the MatMul's input on calibration samples
 * (weight_only_gptq.c).
 */
#ifndef MQ_QUANT_WEIGHT_ONLY_H
#define MQ_QUANT_WEIGHT_ONLY_H

#include "model/model.h"
#include "onnx.pb-c.h"
#include "quant/select.h"
#include "util/error.h"

enum mq_weight_only_method { MQ_WEIGHT_ONLY_RTN = 0, MQ_WEIGHT_ONLY_GPTQ };

struct mq_weight_only_options {
    int qtype;             /* MQ_DTYPE_INT4, UINT4 or INT8 */
    int block_size;        /* a power of two from 16 to 256 */
    int format_qdq;        /* blocked DequantizeLinear (opset 21) instead of MatMulNBits */
    enum mq_weight_only_method method;
    const char *calib;     /* GPTQ: the samples */
    long long calib_limit; /* GPTQ: the first N samples (0: all) */
};

struct mq_weight_only_result {
    int quantized;                 /* MatMuls rewritten */
    int kept_float;                /* selected MatMuls left float */
    unsigned long long float_bytes; /* their weights' float32 bytes */
    unsigned long long quant_bytes; /* what replaced them: packed values, scales, zero points */
    int gathers;                   /* embedding Gathers rewritten (weight_only_gather.c) */
    unsigned long long gather_float_bytes, gather_quant_bytes; /* their tables, before/after */
};

/* `model` is the loaded model whose proto is rewritten (GPTQ runs it on the samples first). */
int mq_quant_weight_only(struct mq_model *model, struct mq_selection *sel,
                         const struct mq_weight_only_options *o,
                         struct mq_weight_only_result *result, struct mq_error *err);

/*
 * Embedding tables (weight_only_gather.c): whether node is a selected Gather of the main graph
 * along axis 0 of a 2-D float32 initializer that only such Gathers read (*table gets it; *why,
 * when not NULL, says why not), and its rewrite into GatherBlockQuantized, or with format_qdq
 * a blocked DequantizeLinear before it (*replaced: the node left the graph).
 */
struct mq_node_list;
int mq_weight_only_gather_site(const Onnx__GraphProto *g, const struct mq_selection *sel,
                               const Onnx__NodeProto *node, int bits,
                               Onnx__TensorProto **table, const char **why);
int mq_weight_only_gather_rewrite(Onnx__GraphProto *g, Onnx__NodeProto *gather,
                                  Onnx__TensorProto *table,
                                  const struct mq_weight_only_options *o,
                                  struct mq_node_list *list, struct mq_weight_only_result *res,
                                  int *replaced, struct mq_error *err);

/* The part GPTQ needs from the samples: for each name, the K x K matrix sum of x^T x over the
   rows x of that tensor (its last dimension K), and the row count.  h[i] is NULL for a tensor
   the samples never produced. */
int mq_weight_only_hessians(struct mq_model *model, const char *calib, long long limit,
                            char **names, const int64_t *k, int n, double **h, int64_t *rows,
                            struct mq_error *err);

/* GPTQ on W [K, N] (float, updated in place as it goes): fills u [K, N] with the unsigned
   codes, using the block scales/zero points computed by `params` from the updated rows. */
struct mq_block_quantizer {
    int bits, is_signed;
};
/* The block quantizer of a --weight-only type: int8 (8 bits), int4 or uint4. */
struct mq_block_quantizer mq_weight_only_quantizer(int qtype);
void mq_weight_only_block_params(const struct mq_block_quantizer *bq, const float *v,
                                 int64_t count, int64_t stride, float *scale, int *zero);
/* The unsigned code of v in a block with this scale and zero point, clamped to `bits` bits. */
uint8_t mq_weight_only_code(float v, float scale, int zero, int bits);
/* Stores value j of a row packed `bits` wide, lowest bits first, into out (zeroed first). */
void mq_weight_only_pack(uint8_t *out, int64_t j, unsigned v, int bits);
/* The names of what a blocked weight or table becomes: the quantized data, its block scales and
   zero points, the DequantizeLinear (or MatMulNBits/GatherBlockQuantized) node and its output. */
struct mq_weight_only_names {
    char *data, *scales, *zeros, *node, *deq;
};
/* The names for weight `tensor` read by `node` (named after the node, else its first output);
   `role` names the DequantizeLinear (`--format qdq`): "weight", "table".  0, or -1 when out of
   memory (nothing left to free). */
int mq_weight_only_names_make(struct mq_weight_only_names *nm, const char *tensor,
                              const Onnx__NodeProto *node, const char *role, int format_qdq,
                              int bits);
void mq_weight_only_names_free(struct mq_weight_only_names *nm);

/*
 * `--format qdq`: stores codes u [dims[0], dims[1]] (their block scales and zero points, blocked
 * along `axis`) as an opset-21 blocked DequantizeLinear and points input `reader_input` of
 * `reader` at its output; reader goes on `list`.  Data already stored (a table two readers
 * share) is neither stored nor dequantized twice.  *bytes grows by what was stored.
 */
int mq_weight_only_emit_qdq(Onnx__GraphProto *g, Onnx__NodeProto *reader, size_t reader_input,
                            const struct mq_weight_only_names *nm,
                            const struct mq_block_quantizer *bq, int qtype, const int64_t dims[2],
                            int axis, int64_t block, const uint8_t *u, const float *scales,
                            const int *zeros, struct mq_node_list *list,
                            unsigned long long *bytes, struct mq_error *err);

int mq_weight_only_gptq(const struct mq_block_quantizer *bq, float *w, int64_t k, int64_t n,
                        int64_t block, const double *h, uint8_t *u, float *scales, int *zeros,
                        struct mq_error *err);

#endif
