/* The quantize command's options: its help text and the parser (cli/quantize_args.h). */
#include "cli/quantize_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "quant/params.h"
#include "util/text.h"

static const char quantize_help[] =
    "Usage: onnx-monoquant IN.onnx OUT.onnx --calib DIR [options]\n"
    "       onnx-monoquant IN.onnx OUT.onnx --load-ranges FILE.json [options]\n"
    "\n"
    "Quantizes a float model statically into QDQ form (QuantizeLinear/DequantizeLinear\n"
    "pairs that onnxruntime fuses into integer kernels). OUT is written atomically,\n"
    "and only when everything succeeded; the same command gives the same bytes.\n"
    "\n"
    "Calibration:\n"
    "  --calib DIR              samples: test_data_set_N/input_K.pb folders, folders of\n"
    "                           <input>.npy, .npz archives, or stacked <input>.npy\n"
    "  --load-ranges FILE       ranges saved by --save-ranges or `calibrate` (repeatable:\n"
    "                           shards are merged) instead of --calib\n"
    "  --calibrate M            minmax (default), percentile, entropy or mse\n"
    "  --percentile P           for percentile: keep P percent (default 99.999)\n"
    "  --calib-limit N          use the first N samples\n"
    "  --jobs N                 threads for the passes over the samples (calibration, the\n"
    "                           second pass where one is needed, the accuracy check; the\n"
    "                           result does not depend on N; default: the CPU count)\n"
    "  --save-ranges FILE       also save the calibrated ranges\n"
    "\n"
    "Selection (a name or pattern that matches nothing is an error):\n"
    "  --op-types A,B,...       op types to quantize (default: Conv, ConvTranspose, Gemm,\n"
    "                           MatMul and the ops around them onnxruntime runs in int8;\n"
    "                           Softmax only when named)\n"
    "  --exclude-op-types A,... op types to leave float\n"
    "  --include-nodes N,...    quantize only these nodes (names or glob patterns such\n"
    "                           as 'block1/*'; repeatable; @FILE reads one per line)\n"
    "  --exclude-nodes N,...    leave these nodes float (same forms)\n"
    "\n"
    "Scheme (flags override the profile):\n"
    "  --profile P              ort-cpu (default): uint8 asymmetric activations, int8\n"
    "                           symmetric per-channel weights; tensorrt: int8 symmetric\n"
    "                           activations, per-channel weights, Q/DQ on op inputs only\n"
    "  --activation-type T      uint8, int8, uint16 or int16\n"
    "  --weight-type T          int8, uint8, int4 or uint4\n"
    "  --per-tensor             one weight scale per tensor instead of per channel\n"
    "  --symmetric-activations  activation zero point in the middle of the range\n"
    "  --reduce-range           7-bit weights (for CPUs without VNNI)\n"
    "  --no-bias-correction     keep biases as they are (bit-identical to onnxruntime's);\n"
    "                           by default they absorb the mean error of the weights'\n"
    "                           rounding, measured on the --calib samples\n"
    "  --min-sample-sqnr DB     leave an activation float when quantizing it keeps less\n"
    "                           than DB of SQNR on some --calib sample (default 10; 0: off)\n"
    "  --weight-rounding M      nearest (default) or gptq: Conv/Gemm/MatMul weights rounded\n"
    "                           so each error moves onto the weights not yet rounded,\n"
    "                           weighted by the layer input's second moments on --calib;\n"
    "                           unless given, --target-* tries both and keeps the better\n"
    "\n"
    "Accuracy (measured in the interpreter against the FP32 model):\n"
    "  --eval DIR               samples for the check and the search (default: the\n"
    "                           --calib samples, within --calib-limit)\n"
    "  --eval-limit N           use the first N --eval samples\n"
    "  --split-hardswish        write HardSwish behind a Conv as Add, Clip, Mul, Mul so it\n"
    "                           stays in the int8 island (faster in onnxruntime, which has\n"
    "                           no integer HardSwish; costs some accuracy: the check says)\n"
    "  --hardswish-codes        write HardSwish behind a Conv as x * HardSigmoid(x), the\n"
    "                           HardSigmoid run as a Clip of x's integer codes and the Mul\n"
    "                           as QLinearMul: no float pass left, no rounding added, but x\n"
    "                           gets a slightly coarser scale (the check says what it costs)\n"
    "  --no-channel-pad         keep every Conv's channels (default: an input of 1-3,\n"
    "                           5-7, ... channels is padded with zeros to a multiple of 4\n"
    "                           where onnxruntime's fast int8 Conv then applies, and a\n"
    "                           depthwise Conv between two Convs widened to a multiple\n"
    "                           of 16, with the Convs around it, for its depthwise form)\n"
    "  --no-pool-conv           keep a quantized AveragePool as onnxruntime's\n"
    "                           QLinearAveragePool (default: written as the depthwise\n"
    "                           Conv that averages the same, which onnxruntime runs in\n"
    "                           its vectorised int8 kernel, about 8x faster)\n"
    "  --no-check               skip the check: per output SQNR, cosine, max abs error\n"
    "                           and top-1 agreement for class scores ([N, C], C >= 2);\n"
    "                           below 20 dB a warning names the nodes adding most error\n"
    "  --target-sqnr DB         leave the fewest nodes float (most Conv/MatMul compute\n"
    "                           in int8) so that every output keeps DB of SQNR\n"
    "  --target-margin K        aim K standard errors of the SQNR over the samples above\n"
    "                           --target-sqnr (default 1): what other samples may lose\n"
    "  --target-agreement PCT   the same for top-1 agreement of class-score outputs\n"
    "  --fallback T             what the search's nodes become: float (default) or int16\n"
    "                           (16-bit QuantizeLinear/DequantizeLinear on their\n"
    "                           activations, opset 21, for runtimes with 16-bit kernels)\n"
    "Without activation ranges (MatMuls with a constant weight; no --calib needed):\n"
    "  --dynamic                int8 weights (per column unless --per-tensor), activations\n"
    "                           quantized at run time (onnxruntime's DynamicQuantizeMatMul)\n"
    "  --weight-only T          int4, uint4 or int8 weights in blocks along K, activations\n"
    "                           float: com.microsoft MatMulNBits\n"
    "  --block-size N           values per block, a power of two from 16 to 256 (default 32)\n"
    "  --format F               nbits (default) or qdq: an opset-21 blocked DequantizeLinear\n"
    "  --weight-only-method M   rtn (round to nearest, default) or gptq (needs --calib: the\n"
    "                           rounding error of each row moves onto the rows after it,\n"
    "                           weighted by the input's second moments on the samples)\n"
    "\n"
    "Output:\n"
    "  --report FILE.json       every node with its decision and reason, every quantized\n"
    "                           tensor with range, scale and zero point, sizes\n"
    "  --html FILE.html         a self-contained page to look at: sizes, the error along\n"
    "                           the network against the float model (measured on the\n"
    "                           --calib samples), ranges against histograms, every node\n"
    "  --external-data          store large initializers in OUT.data next to OUT\n"
    "  --quiet                  no progress line or summary\n";

void mq_quantize_args_free(struct mq_quantize_args *a)
{
    free(a->loads);
    mq_pattern_list_free(&a->op_types);
    mq_pattern_list_free(&a->exclude_op_types);
    mq_pattern_list_free(&a->include_nodes);
    mq_pattern_list_free(&a->exclude_nodes);
}

static int usage(const char *fmt, const char *detail)
{
    fprintf(stderr, "onnx-monoquant: ");
    mq_text_printf(stderr, fmt, detail);
    fprintf(stderr, "\nTry 'onnx-monoquant IN.onnx OUT.onnx --help'.\n");
    return MQ_EXIT_USAGE;
}

/* A pattern-list option: usage errors come back as exit status 2. */
static int add_patterns(struct mq_pattern_list *list, const char *value, const char *option)
{
    struct mq_error err = {{0}};
    int rc = mq_pattern_list_add(list, value, option, &err);
    if (rc == MQ_OK)
        return 0;
    mq_cli_print_error(&err);
    return rc == MQ_ERR_MEMORY ? MQ_EXIT_FAILURE : MQ_EXIT_USAGE;
}

/* Returns -1 to go on, else the exit status. */
int mq_quantize_args_parse(int argc, char **argv, struct mq_quantize_args *a)
{
    int act_type = 0, weight_type = 0, per_tensor = 0, sym_act = 0, reduce = 0;
    int no_bias_correction = 0;
    double min_sample_sqnr = MQ_DEFAULT_MIN_SAMPLE_SQNR_DB;
    a->gptq_rounding = -1;
    a->target.stderr_multiple = MQ_TARGET_DEFAULT_STDERR_MULTIPLE;
    a->loads = calloc((size_t)argc + 1, sizeof *a->loads);
    if (!a->loads) {
        fprintf(stderr, "onnx-monoquant: out of memory\n");
        return MQ_EXIT_FAILURE;
    }
    mq_calib_options_init(&a->calib_options);
    mq_preprocess_init(&a->preprocess);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m, rc;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(quantize_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
            return MQ_EXIT_OK;
        } else if ((m = mq_cli_preprocess_option(argc, argv, &i, &a->preprocess, NULL))) {
            if (m < 0)
                return MQ_EXIT_USAGE;
        } else if (mq_cli_flag(argv, i, "quiet")) {
            a->quiet = 1;
        } else if (mq_cli_flag(argv, i, "per-tensor")) {
            per_tensor = 1;
        } else if (mq_cli_flag(argv, i, "symmetric-activations")) {
            sym_act = 1;
        } else if (mq_cli_flag(argv, i, "reduce-range")) {
            reduce = 1;
        } else if (mq_cli_flag(argv, i, "no-bias-correction")) {
            no_bias_correction = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "min-sample-sqnr", &v))) {
            char *end = NULL;
            double db = m < 0 ? -1 : strtod(v, &end);
            if (m < 0 || end == v || *end || !(db >= 0) || db > 200)
                return usage("%s takes a number of dB from 0 to 200", "--min-sample-sqnr");
            min_sample_sqnr = db;
        } else if ((m = mq_cli_option(argc, argv, &i, "weight-rounding", &v))) {
            if (m < 0 || (strcmp(v, "nearest") != 0 && strcmp(v, "gptq") != 0))
                return usage("%s takes nearest or gptq", "--weight-rounding");
            a->gptq_rounding = strcmp(v, "gptq") == 0;
        } else if (mq_cli_flag(argv, i, "no-check")) {
            a->no_check = 1;
        } else if (mq_cli_flag(argv, i, "split-hardswish")) {
            a->split_hardswish = 1;
        } else if (mq_cli_flag(argv, i, "hardswish-codes")) {
            a->hardswish_codes = 1;
        } else if (mq_cli_flag(argv, i, "no-channel-pad")) {
            a->no_channel_pad = 1;
        } else if (mq_cli_flag(argv, i, "no-pool-conv")) {
            a->no_pool_conv = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "eval", &v))) {
            if (m < 0)
                return usage("%s needs a folder", "--eval");
            a->eval = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "eval-limit", &v))) {
            if (m < 0 || (a->eval_limit = mq_cli_parse_count(v)) < 1)
                return usage("%s takes a count from 1", "--eval-limit");
        } else if ((m = mq_cli_option(argc, argv, &i, "target-sqnr", &v))) {
            char *end = NULL;
            double db = m < 0 ? -1 : strtod(v, &end);
            if (m < 0 || end == v || *end || !(db > 0) || db > 300)
                return usage("%s takes a number of dB above 0, at most 300", "--target-sqnr");
            a->target.has_sqnr = 1;
            a->target.sqnr_db = db;
        } else if ((m = mq_cli_option(argc, argv, &i, "target-margin", &v))) {
            char *end = NULL;
            double k = m < 0 ? -1 : strtod(v, &end);
            if (m < 0 || end == v || *end || !(k >= 0) || k > 10)
                return usage("%s takes a number of standard errors from 0 to 10",
                             "--target-margin");
            a->target.stderr_multiple = k;
        } else if ((m = mq_cli_option(argc, argv, &i, "target-agreement", &v))) {
            char *end = NULL;
            double pct = m < 0 ? -1 : strtod(v, &end);
            if (m < 0 || end == v || *end || !(pct > 0) || pct > 100)
                return usage("%s takes a percentage in (0, 100]", "--target-agreement");
            a->target.has_agreement = 1;
            a->target.agreement_pct = pct;
        } else if ((m = mq_cli_option(argc, argv, &i, "fallback", &v))) {
            if (m < 0 || (strcmp(v, "float") != 0 && strcmp(v, "int16") != 0))
                return usage("%s takes float or int16", "--fallback");
            a->fallback = strcmp(v, "int16") == 0 ? MQ_FALLBACK_INT16 : MQ_FALLBACK_FLOAT;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            a->save.external_data = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib", &v))) {
            if (m < 0)
                return usage("%s needs a folder", "--calib");
            a->calib = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "load-ranges", &v))) {
            if (m < 0)
                return usage("%s needs a file", "--load-ranges");
            a->loads[a->n_loads++] = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "save-ranges", &v))) {
            if (m < 0)
                return usage("%s needs a file", "--save-ranges");
            a->save_ranges = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "report", &v))) {
            if (m < 0)
                return usage("%s needs a file", "--report");
            a->report = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "html", &v))) {
            if (m < 0)
                return usage("%s needs a file", "--html");
            a->html = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "calibrate", &v))) {
            if (m < 0 || mq_calib_method_parse(v, &a->calib_options.method))
                return usage("%s takes minmax, percentile, entropy or mse", "--calibrate");
            a->method_name = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "percentile", &v))) {
            char *end = NULL;
            double p = m < 0 ? 0 : strtod(v, &end);
            if (m < 0 || end == v || *end || !(p > 0) || p > 100)
                return usage("%s takes a number in (0, 100]", "--percentile");
            a->calib_options.percentile = p;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib-limit", &v))) {
            if (m < 0 || (a->limit = mq_cli_parse_count(v)) < 1)
                return usage("%s takes a count from 1", "--calib-limit");
        } else if ((m = mq_cli_option(argc, argv, &i, "jobs", &v))) {
            long long jobs = m < 0 ? -1 : mq_cli_parse_count(v);
            if (jobs < 1 || jobs > 1024)
                return usage("%s takes a count from 1 to 1024", "--jobs");
            a->calib_options.jobs = (int)jobs;
        } else if ((m = mq_cli_option(argc, argv, &i, "profile", &v))) {
            if (m < 0 || (strcmp(v, "ort-cpu") != 0 && strcmp(v, "tensorrt") != 0))
                return usage("%s takes ort-cpu or tensorrt", "--profile");
            a->profile = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "activation-type", &v))) {
            if (m < 0 || mq_qtype_parse(v, &act_type) || mq_qtype_bits(act_type) == 4)
                return usage("%s takes uint8, int8, uint16 or int16", "--activation-type");
        } else if ((m = mq_cli_option(argc, argv, &i, "weight-type", &v))) {
            if (m < 0 || mq_qtype_parse(v, &weight_type) || mq_qtype_bits(weight_type) == 16)
                return usage("%s takes int8, uint8, int4 or uint4", "--weight-type");
        } else if ((m = mq_cli_option(argc, argv, &i, "op-types", &v))) {
            if (m < 0)
                return usage("%s needs a list such as Conv,MatMul", "--op-types");
            if ((rc = add_patterns(&a->op_types, v, "--op-types")))
                return rc;
        } else if ((m = mq_cli_option(argc, argv, &i, "exclude-op-types", &v))) {
            if (m < 0)
                return usage("%s needs a list of op types", "--exclude-op-types");
            if ((rc = add_patterns(&a->exclude_op_types, v, "--exclude-op-types")))
                return rc;
        } else if ((m = mq_cli_option(argc, argv, &i, "include-nodes", &v))) {
            if (m < 0)
                return usage("%s needs node names or patterns", "--include-nodes");
            if ((rc = add_patterns(&a->include_nodes, v, "--include-nodes")))
                return rc;
        } else if ((m = mq_cli_option(argc, argv, &i, "exclude-nodes", &v))) {
            if (m < 0)
                return usage("%s needs node names or patterns", "--exclude-nodes");
            if ((rc = add_patterns(&a->exclude_nodes, v, "--exclude-nodes")))
                return rc;
        } else if ((rc = mq_cli_weight_mode_option(argc, argv, &i, &a->weights))) {
            if (rc != 1)
                return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage("unknown option '%s'", argv[i]);
        } else if (!a->in) {
            a->in = argv[i];
        } else if (!a->out) {
            a->out = argv[i];
        } else {
            return usage("unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->in || !a->out)
        return usage("%s", "quantizing needs IN.onnx and OUT.onnx");
    if (a->weights.dynamic && a->weights.weight_only)
        return usage("%s", "give --dynamic or --weight-only, not both");
    if ((a->weights.dynamic || a->weights.weight_only) && (a->n_loads || a->report))
        return usage("%s", "--dynamic and --weight-only take neither --load-ranges nor --report");
    if (a->weights.weight_only && a->weights.wo.method == MQ_WEIGHT_ONLY_GPTQ && !a->calib)
        return usage("%s", "--weight-only-method gptq needs --calib DIR");
    if (!a->calib && !a->n_loads && !a->weights.dynamic && !a->weights.weight_only)
        return usage("%s", "quantizing needs --calib DIR or --load-ranges FILE.json");
    if (a->calib && a->n_loads)
        return usage("%s", "give --calib or --load-ranges, not both");
    if (a->n_loads && (a->limit || a->save_ranges))
        return usage("%s", "--calib-limit and --save-ranges go with --calib");
    if (a->gptq_rounding == 1 && !a->calib)
        return usage("%s", "--weight-rounding gptq needs --calib DIR");
    if (a->fallback != MQ_FALLBACK_FLOAT && !a->target.has_sqnr && !a->target.has_agreement)
        return usage("%s", "--fallback goes with --target-sqnr or --target-agreement");
    if (a->eval_limit && !a->eval)
        return usage("%s", "--eval-limit goes with --eval");
    if ((a->target.has_sqnr || a->target.has_agreement) && !a->eval && !a->calib)
        return usage("%s", "--target-sqnr and --target-agreement need samples: --calib or --eval");
    if (a->report && (strcmp(a->report, a->out) == 0 || strcmp(a->report, a->in) == 0))
        return usage("%s", "--report must name a file other than IN and OUT");
    if (a->html && (strcmp(a->html, a->out) == 0 || strcmp(a->html, a->in) == 0 ||
                    (a->report && strcmp(a->html, a->report) == 0)))
        return usage("%s", "--html must name a file other than IN, OUT and --report");

    /* The profile first, then the flags on top of it. */
    if (!a->profile)
        a->profile = "ort-cpu";
    mq_quant_options_default(&a->quant);
    if (strcmp(a->profile, "tensorrt") == 0) {
        a->quant.activation_type = MQ_DTYPE_INT8;
        a->quant.symmetric_activations = 1;
        a->quant.quantize_outputs = 0;
    }
    if (act_type)
        a->quant.activation_type = act_type;
    if (weight_type)
        a->quant.weight_type = weight_type;
    a->quant.symmetric_weights = mq_qtype_signed(a->quant.weight_type);
    if (per_tensor)
        a->quant.per_channel = 0;
    if (sym_act)
        a->quant.symmetric_activations = 1;
    if (reduce)
        a->quant.reduce_range = 1;
    a->quant.bias_correction = !no_bias_correction;
    a->quant.min_sample_sqnr_db = min_sample_sqnr;
    a->calib_options.symmetric = a->quant.symmetric_activations;
    return -1;
}
