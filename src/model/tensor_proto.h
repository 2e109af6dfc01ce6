/* ONNX TensorProto <-> mq_tensor, and .pb files holding one TensorProto. */
#ifndef MQ_TENSOR_PROTO_H
#define MQ_TENSOR_PROTO_H

#include "core/tensor.h"
#include "onnx.pb-c.h"

/*
 * Decodes a TensorProto (raw_data or the typed fields).  Checks that the data
 * length agrees with dims before allocating anything; `what` names the tensor
 * in messages.  External data must have been resolved by the model loader.
 */
int mq_tensor_from_proto(const Onnx__TensorProto *proto, const char *what, struct mq_tensor *out,
                         struct mq_error *err);
/* Checks a TensorProto's dims, type and data length without decoding it. */
int mq_tensor_proto_validate(const Onnx__TensorProto *proto, const char *what,
                             struct mq_error *err);
/* Byte size of the decoded data, or -1 when dims are invalid. */
int64_t mq_tensor_proto_count(const Onnx__TensorProto *proto);
/* The values of a 1-D int64 tensor of at most `cap` values (raw or int64_data, in this
   file); their count, or -1 when it is not one. */
int mq_tensor_proto_int64_values(const Onnx__TensorProto *t, int64_t *out, int cap);

/* A new TensorProto (free with onnx__tensor_proto__free_unpacked) holding t in raw_data. */
int mq_tensor_to_proto(const struct mq_tensor *t, const char *name, Onnx__TensorProto **out,
                       struct mq_error *err);

/* One TensorProto per file (the test_data_set_N/input_K.pb layout). *name may be NULL.
   (tensor_pb.c: a file of dims, data_type, name and raw_data is read from the bytes around its
   data, the data straight into the tensor; any other goes through protobuf-c.) */
int mq_tensor_read_pb(const char *path, struct mq_tensor *out, char **name, struct mq_error *err);
/* The same, always through protobuf-c's unpack of the whole file (the tests compare both). */
int mq_tensor_read_pb_unpacked(const char *path, struct mq_tensor *out, char **name,
                               struct mq_error *err);
/* What a .pb file holds, without its data. */
struct mq_tensor_pb_info {
    int dtype;
    int rank;
    int64_t dims[MQ_MAX_RANK];
};
/* The type and shape mq_tensor_read_pb would give, with the same checks and messages, read
   where the file allows from its fields alone (no data read, no tensor allocated). */
int mq_tensor_describe_pb(const char *path, struct mq_tensor_pb_info *info, char **name,
                          struct mq_error *err);
int mq_tensor_write_pb(const char *path, const struct mq_tensor *t, const char *name,
                       struct mq_error *err);

#endif
