/*
 * The model tools: float16 conversion, dequantization and comparison.
 * Each returns the process exit status (0, 1 or 2), as the commands of cli.h.
 */
#ifndef MQ_COMMANDS_TOOLS_H
#define MQ_COMMANDS_TOOLS_H

/*
 * `onnx-monoquant IN.onnx OUT.onnx --fp16 [options]`: takes the quantize
 * command's argv unchanged (argv[0] the program, then IN, OUT and options in
 * any order); the quantize dispatcher calls it when --fp16 is present.
 */
int mq_cli_fp16(int argc, char **argv);
/* `onnx-monoquant dequantize IN.onnx OUT.onnx`: argv[0] is "dequantize". */
int mq_cli_dequantize(int argc, char **argv);
/* `onnx-monoquant compare A.onnx B.onnx --inputs DIR`: argv[0] is "compare". */
int mq_cli_compare(int argc, char **argv);

#endif
