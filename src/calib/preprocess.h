/*
 * Declared pre-processing: how an image or a WAV file becomes the tensor a
 * model takes.  Set key by key from the command line (--image-size 224x224)
 * or from a small file of `key value` lines (--preprocess FILE); the keys are
 * the same in both.  Nothing here decodes a file: source_image.c and
 * source_audio.c apply it.
 *
 * Images: decode (8-bit RGB), resize to the target size (stretch; shorter:
 * the shorter side to the target or to --shorter-side, then --crop center (the
 * left/top offset rounded down); letterbox: the longer
 * side to the target, the rest padded with --pad-value), convert colour, then
 * per channel   out = (pixel * scale - mean[c]) / std[c]   in the output
 * channel order (for bgr, mean[0] is blue's).
 * Audio: samples as floats in [-1, 1), channels averaged (--mono), resampled to
 * --sample-rate, cut into frames of --frame samples every --hop samples; the
 * last partial frame is padded with zeros (--pad zero) or dropped (--pad none).
 */
#ifndef MQ_CALIB_PREPROCESS_H
#define MQ_CALIB_PREPROCESS_H

#include <stdint.h>

#include "util/error.h"

enum mq_resize_mode { MQ_RESIZE_STRETCH, MQ_RESIZE_SHORTER, MQ_RESIZE_LETTERBOX };
enum mq_color_mode { MQ_COLOR_RGB, MQ_COLOR_BGR, MQ_COLOR_GRAY };
enum mq_layout_mode { MQ_LAYOUT_AUTO, MQ_LAYOUT_NCHW, MQ_LAYOUT_NHWC };
enum mq_resample_filter { MQ_FILTER_BILINEAR, MQ_FILTER_BICUBIC, MQ_FILTER_NEAREST };

#define MQ_PREPROCESS_MAX_CHANNELS 4
#define MQ_PREPROCESS_MAX_FILLS 8

struct mq_preprocess {
    int any;                          /* a key was given: decoding user files is allowed */
    /* images */
    int64_t width, height;            /* 0: from the model's input shape */
    enum mq_resize_mode resize;
    int crop_center;                  /* shorter: crop the centre (the only crop there is) */
    int64_t shorter_side;             /* shorter: that side's length before the crop
                                         (torchvision's Resize(256) + CenterCrop(224)); 0: the
                                         target's */
    enum mq_resample_filter filter;
    enum mq_color_mode color;
    enum mq_layout_mode layout;
    float scale;
    int n_mean, n_std;                /* 1: one value for every channel */
    float mean[MQ_PREPROCESS_MAX_CHANNELS], std[MQ_PREPROCESS_MAX_CHANNELS];
    float pad_value;                  /* letterbox border, on the 0..255 scale */
    /* audio */
    int64_t sample_rate;              /* 0: keep the file's */
    int mono;
    int64_t frame, hop;               /* 0: from the model / frame */
    int pad_zero;                     /* last partial frame: pad (1) or drop (0) */
    /* Other graph inputs (a recurrent state, a sample-rate scalar): `--fill NAME=VALUE`
       feeds every element of NAME with VALUE. */
    int n_fill;
    char fill_name[MQ_PREPROCESS_MAX_FILLS][128];
    double fill_value[MQ_PREPROCESS_MAX_FILLS];
    /* A recurrent state: `--carry NAME=OUTPUT` feeds input NAME with graph output OUTPUT of
       the previous frame of the same file (zeros for a file's first frame).  Samples then
       run in order, on one thread. */
    int n_carry;
    char carry_input[MQ_PREPROCESS_MAX_FILLS][128];
    char carry_output[MQ_PREPROCESS_MAX_FILLS][128];
};

void mq_preprocess_init(struct mq_preprocess *pre);
/* True when `key` (without the leading --) is a pre-processing key. */
int mq_preprocess_is_key(const char *key);
/* Sets one key; the error names the key and the value. */
int mq_preprocess_set(struct mq_preprocess *pre, const char *key, const char *value,
                      struct mq_error *err);
/* Reads `key value` (or key=value, or --key value) lines; # starts a comment. */
int mq_preprocess_load(struct mq_preprocess *pre, const char *path, struct mq_error *err);

#endif
