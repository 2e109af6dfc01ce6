/*
 * libFuzzer target: an image file as a folder of images feeds calibration
 * (mq_image_decode: libjpeg-turbo and libpng behind our wrappers, the PNG chunk
 * scan, the CMYK and 16-bit refusals), then the whole pre-processing into a
 * small tensor in each resize mode, colour and layout.  Properties beyond "no
 * crash": a decoded image has its announced size, and every value written is
 * finite and within what the scale/mean/std allow.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "calib/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_error err;
    struct mq_image image;
    if (mq_image_decode(data, size, "fuzz.img", &image, &err) != 0)
        return 0;
    if (image.width < 1 || image.height < 1 || image.channels != 3 || !image.pixels)
        abort();
    /* Big images would make each run slow without reaching new code. */
    if ((int64_t)image.width * image.height > 1 << 20) {
        mq_image_free(&image);
        return 0;
    }
    static const enum mq_resize_mode modes[] = {MQ_RESIZE_STRETCH, MQ_RESIZE_SHORTER,
                                                MQ_RESIZE_LETTERBOX};
    for (int m = 0; m < 3; m++) {
        struct mq_image copy = image;
        size_t bytes = (size_t)image.width * (size_t)image.height * 3;
        copy.pixels = malloc(bytes);
        if (!copy.pixels)
            break;
        memcpy(copy.pixels, image.pixels, bytes);
        struct mq_preprocess pre;
        mq_preprocess_init(&pre);
        pre.resize = modes[m];
        pre.crop_center = 1;
        pre.filter = (enum mq_resample_filter)(size % 3);
        pre.color = m == 2 ? MQ_COLOR_GRAY : m == 1 ? MQ_COLOR_BGR : MQ_COLOR_RGB;
        pre.scale = 1.0f / 255.0f;
        int channels = m == 2 ? 1 : 3, w = 7 + (int)(size % 5), h = 5 + (int)(size % 7);
        float out[3 * 11 * 11];
        if (mq_image_preprocess(&copy, &pre, w, h, channels, m == 1, out, &err) != 0)
            abort(); /* a decoded image always pre-processes */
        for (int i = 0; i < channels * w * h; i++)
            if (!isfinite(out[i]) || out[i] < 0.0f || out[i] > 1.0f)
                abort();
        mq_image_free(&copy);
    }
    mq_image_free(&image);
    return 0;
}
