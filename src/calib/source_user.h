/*
 * Samples from the user's own files: a folder of images (JPEG, PNG; one
 * sample each) or of WAV files (cut into frames, each a sample), turned into
 * the model's one float input by the declared pre-processing
 * (calib/preprocess.h).  Other graph inputs are fed constants (--fill).
 * calib/reader.c finds the folder's layout and hands the files here.
 */
#ifndef MQ_CALIB_SOURCE_USER_H
#define MQ_CALIB_SOURCE_USER_H

#include <stdint.h>

#include "calib/preprocess.h"
#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_user_samples;

enum mq_user_kind { MQ_USER_IMAGES, MQ_USER_AUDIO };

/* files[0..n_files) are paths, in sample order; the source copies them. */
int mq_user_samples_open(enum mq_user_kind kind, char *const *files, int n_files,
                         const Onnx__ValueInfoProto *const *inputs, int n_inputs,
                         const struct mq_preprocess *pre, struct mq_user_samples **out,
                         struct mq_error *err);
void mq_user_samples_free(struct mq_user_samples *s);
int64_t mq_user_samples_count(const struct mq_user_samples *s);
const char *mq_user_samples_name(const struct mq_user_samples *s, int64_t i);
/* The graph output that feeds input k from the previous frame (--carry), or NULL. */
const char *mq_user_samples_carried_from(const struct mq_user_samples *s, int k);
/* True when sample i is the first frame of its file (a carried input starts at zero). */
int mq_user_samples_starts_stream(const struct mq_user_samples *s, int64_t i);
/* Safe from several threads at once. */
int mq_user_samples_load(struct mq_user_samples *s, int64_t i, struct mq_tensor *inputs,
                         struct mq_error *err);

#endif
