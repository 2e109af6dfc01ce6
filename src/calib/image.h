/*
 * Images for calibration: decoded by codec/image.h (JPEG and PNG to 8-bit
 * RGB), resized as Pillow does (separable convolution with antialiasing,
 * 8-bit between the passes), and turned into a float tensor by the declared
 * pre-processing (calib/preprocess.h).
 */
#ifndef MQ_CALIB_IMAGE_H
#define MQ_CALIB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "calib/preprocess.h"
#include "codec/image.h"
#include "util/error.h"

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
