/*
 * Calibration samples on disk, found and checked before anything runs.
 *
 * A folder given to --calib holds one of these layouts (found automatically):
 *   1. sample folders of ONNX TensorProto files, `test_data_set_N/input_K.pb`:
 *      a file feeds the graph input its `name` field names, or when the name
 *      is empty or names no graph input, the K-th one (other .pb files, such
 *      as output_K.pb, are ignored);
 *   2. sample folders of `<input name>.npy` files;
 *   3. `.npz` archives, one per sample, keyed by graph input name (stored, as
 *      numpy.savez writes them; compressed archives are refused);
 *   4. one `<input name>.npy` per graph input whose first axis is the sample
 *      axis (sample i is array[i]);
 *   5. input_K.pb files in the folder itself: one sample, bound as in 1.
 * This is the one binding rule of every command that reads samples
 * (calibrate, quantize, fp16 --calib, run).
 *   6. image files (JPEG, PNG), one sample each, or WAV files cut into frames,
 *      through declared pre-processing (calib/source_user.h).
 * Samples are taken in natural order (test_data_set_2 before
 * test_data_set_10); hidden entries are skipped; other files (labels.npy,
 * boxes.txt, README beside the samples) are counted and never read, but two
 * sample layouts in one folder are an error.
 *
 * Opening checks every sample against the graph inputs, from headers where the
 * format has them: a missing input, an extra one, a wrong element type, rank
 * or fixed dimension, or a symbolic dimension that takes two values within one
 * sample gives an error naming the file, the input and both shapes.
 * Non-float inputs (ids, sample rates) are fed as they are; a uint16 tensor
 * feeds a bfloat16 input (older writers stored bfloat16 so).
 */
#ifndef MQ_CALIB_READER_H
#define MQ_CALIB_READER_H

#include <stdint.h>

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_calib_source;

enum mq_calib_layout {
    MQ_CALIB_LAYOUT_PB_FOLDERS,
    MQ_CALIB_LAYOUT_NPY_FOLDERS,
    MQ_CALIB_LAYOUT_NPZ,
    MQ_CALIB_LAYOUT_NPY_STACKED,
    MQ_CALIB_LAYOUT_IMAGES,
    MQ_CALIB_LAYOUT_AUDIO,
};

struct mq_preprocess;

/* How to open a folder beyond its path. */
struct mq_calib_open_options {
    int64_t limit;                         /* > 0: the first `limit` samples only */
    /* shard_count > 0: only samples shard_index, shard_index + shard_count, ... of those
       (after the limit), so shard_count workers together read each sample once. */
    int64_t shard_index, shard_count;
    /* For folders of images or WAV files (calib/preprocess.h); NULL refuses them. */
    const struct mq_preprocess *preprocess;
};

/*
 * Finds and checks the samples of `dir` for the graph inputs inputs[0..n)
 * (mq_plan_input of a built plan: the inputs a caller feeds).  limit > 0
 * keeps only the first `limit` samples (the others are not read at all).
 * The source copies what it needs from inputs.
 */
int mq_calib_source_open(const char *dir, const Onnx__ValueInfoProto *const *inputs, int n_inputs,
                         int64_t limit, struct mq_calib_source **out, struct mq_error *err);
int mq_calib_source_open_with(const char *dir, const Onnx__ValueInfoProto *const *inputs,
                              int n_inputs, const struct mq_calib_open_options *options,
                              struct mq_calib_source **out, struct mq_error *err);
void mq_calib_source_free(struct mq_calib_source *source);
/* Files beside the samples that are no samples (labels.npy, boxes.txt, README, a stray
   file in a folder of images): never read; their count, and the first one's name. */
int64_t mq_calib_source_ignored(const struct mq_calib_source *source, const char **first);

int64_t mq_calib_source_count(const struct mq_calib_source *source);
enum mq_calib_layout mq_calib_source_layout(const struct mq_calib_source *source);
/* "test_data_set folders of .pb tensors", ... for messages. */
const char *mq_calib_layout_name(enum mq_calib_layout layout);
/* Recurrent inputs (--carry): the graph output of the previous sample that feeds input k,
   or NULL; a pass over such a source runs its samples in order on one thread. */
const char *mq_calib_source_carried_from(const struct mq_calib_source *source, int k);
/* True when sample i starts a stream: its carried inputs keep the zeros it was loaded with. */
int mq_calib_source_starts_stream(const struct mq_calib_source *source, int64_t i);
/* What sample i is called in messages: its folder or file, or "FILE.npy[i]" when stacked. */
const char *mq_calib_source_sample_name(const struct mq_calib_source *source, int64_t i);

/*
 * Loads sample i into inputs[0..n_inputs) (graph input order; the caller
 * frees each with mq_tensor_free).  Checks the data against the graph inputs
 * again (files may change between opening and loading).  Safe to call from
 * several threads at once.
 */
int mq_calib_source_load(const struct mq_calib_source *source, int64_t i,
                         struct mq_tensor *inputs, struct mq_error *err);

#endif
