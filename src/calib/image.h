/*
 * Images for calibration: JPEG and PNG decoded by libjpeg-turbo and libpng
 * into 8-bit RGB, resized as Pillow does (separable convolution with
 * antialiasing, 8-bit between the passes), and turned into a float tensor by
 * the declared pre-processing (calib/preprocess.h).
 *
 * Refused, each with a message naming the file: unreadable, truncated or
 * corrupt data, CMYK JPEGs, 16-bit PNGs, animated PNGs (acTL), images over
 * 2^28 pixels.
 */
#ifndef MQ_CALIB_IMAGE_H
#define MQ_CALIB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "calib/preprocess.h"
#include "util/error.h"

struct mq_image {
    int width, height;
    int channels;          /* 3 (RGB) or 1 (gray) */
    uint8_t *pixels;       /* height rows of width * channels bytes */
};

enum mq_image_kind { MQ_IMAGE_NONE, MQ_IMAGE_JPEG, MQ_IMAGE_PNG };

/* From the file name's extension (.jpg, .jpeg, .png in any case). */
enum mq_image_kind mq_image_kind_of_name(const char *name);

/* Decodes a whole file held in memory; `name` is for messages. */
int mq_image_decode(const uint8_t *data, size_t size, const char *name, struct mq_image *out,
                    struct mq_error *err);
int mq_image_decode_file(const char *path, struct mq_image *out, struct mq_error *err);
void mq_image_free(struct mq_image *image);

/* RGB to one channel with Pillow's "L" weights (ITU-R 601-2 luma), in place. */
void mq_image_to_gray(struct mq_image *image);

/* Resizes to w x h with the filter; a new image replaces *image. */
int mq_image_resize(struct mq_image *image, int w, int h, enum mq_resample_filter filter,
                    struct mq_error *err);

/*
 * The whole pre-processing after decoding: colour, resize, crop or letterbox,
 * then scale/mean/std into `dst` (out_h x out_w x channels floats, in
 * `nhwc` or channel-first order).  channels is 1 or 3 and must agree with
 * pre->color.
 */
int mq_image_preprocess(struct mq_image *image, const struct mq_preprocess *pre, int out_w,
                        int out_h, int channels, int nhwc, float *dst, struct mq_error *err);

#endif
