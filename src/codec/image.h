/*
 * Encoded images to pixels: JPEG and PNG decoded by libjpeg-turbo and libpng
 * into 8-bit RGB, and RGB to one luma channel.  The one image decoder of the
 * project: calibration (calib/image.h resizes and normalises what it gives)
 * and the interpreter's ImageDecoder op both use it.
 *
 * Refused, each with a message naming the file (or tensor): unreadable,
 * truncated or corrupt data, CMYK JPEGs, 16-bit PNGs, animated PNGs (acTL),
 * images over 2^28 pixels, and other formats (BMP, TIFF, WebP, JPEG 2000,
 * PNM, GIF are recognised by their signature and named in the message).
 */
#ifndef MQ_CODEC_IMAGE_H
#define MQ_CODEC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mq_image {
    int width, height;
    int channels;          /* 3 (RGB) or 1 (gray) */
    uint8_t *pixels;       /* height rows of width * channels bytes */
    /* Bytes of `pixels` counted against the memory cap (core/tensor.h's --max-memory):
       released by mq_image_free, moved by whatever replaces the buffer. */
    uint64_t reserved;
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

#endif
