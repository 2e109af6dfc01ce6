/* An ONNX model in memory: loading, validation, external data, the name index, saving. */
#ifndef MQ_MODEL_H
#define MQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

/* Largest model file we read into memory, and the protobuf limit. */
#define MQ_MODEL_MAX_BYTES ((uint64_t)2 << 30)

struct mq_model {
    Onnx__ModelProto *proto;  /* owns everything it points to (protobuf-c + malloc) */
    char *path;               /* as given */
    char *dir;                /* folder of the model: external data is confined to it */
};

int mq_model_load(const char *path, struct mq_model **out, struct mq_error *err);
/*
 * Loads from memory.  `dir` is where external data is looked up (NULL refuses
 * external data); `label` names the source in messages.
 */
int mq_model_load_buffer(const uint8_t *bytes, size_t size, const char *dir, const char *label,
                         struct mq_model **out, struct mq_error *err);
void mq_model_free(struct mq_model *model);

/* Opset version the model imports for a domain ("" and "ai.onnx" are one); -1 when absent. */
int mq_model_opset(const struct mq_model *model, const char *domain);
int mq_model_proto_opset(const Onnx__ModelProto *proto, const char *domain);

struct mq_save_options {
    /* Move initializers over 1 KiB into one "<OUT>.data" file next to OUT.
       Done anyway when the inline model would exceed 2 GiB. */
    int external_data;
};

/*
 * Writes the model atomically: a temporary file in OUT's folder, fsync,
 * rename.  On failure nothing is left behind and an existing OUT is intact.
 */
int mq_model_save(const Onnx__ModelProto *proto, const char *path,
                  const struct mq_save_options *options, struct mq_error *err);

/* Refuses OUT when it names the same file as IN (also through links). */
int mq_path_check_distinct(const char *in_path, const char *out_path, struct mq_error *err);

#endif
