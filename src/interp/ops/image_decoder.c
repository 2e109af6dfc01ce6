/*
 * ImageDecoder (opset 20): a 1-D uint8 tensor holding an encoded image file
 * to an H x W x C uint8 tensor, C = 3 for RGB or BGR, 1 for Grayscale.
 *
 * Decoding is codec/image.h's (JPEG and PNG, the decoder calibration uses);
 * other formats are refused with a message naming them.  Grayscale is the
 * decoded RGB reduced with Pillow's "L" luma weights, as the ONNX reference
 * implementation does (it decodes with Pillow and converts to "L").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/image.h"
#include "core/tensor.h"
#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/misc_common.h"

enum pixel_format { PIXELS_RGB, PIXELS_BGR, PIXELS_GRAY };

/* The attribute's spellings, in enum order. */
static const char *const pixel_format_names[] = {"RGB", "BGR", "Grayscale"};

static int image_decoder_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    char buf[32];
    const char *name = mq_attr_string(node, "pixel_format", "RGB", buf, sizeof buf);
    for (size_t i = 0; i < sizeof pixel_format_names / sizeof pixel_format_names[0]; i++) {
        if (strcmp(name, pixel_format_names[i]) == 0) {
            enum pixel_format *state = malloc(sizeof *state);
            if (!state)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            *state = (enum pixel_format)i;
            node->state = state;
            return MQ_OK;
        }
    }
    return misc_fail(node, err, "attribute 'pixel_format' is '%s', expected RGB, BGR or "
                     "Grayscale", name);
}

static int image_decoder_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                             const struct mq_tensor *const *inputs, int n_inputs,
                             struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *encoded = n_inputs > 0 ? inputs[0] : NULL;
    if (!encoded)
        return misc_fail(node, err, "input 'encoded_stream' is missing");
    if (encoded->dtype != MQ_DTYPE_UINT8 || encoded->rank != 1)
        return misc_fail(node, err, "input 'encoded_stream' is %s of rank %d, expected a 1-D "
                         "uint8 tensor", mq_dtype_name(encoded->dtype), encoded->rank);
    enum pixel_format format = *(const enum pixel_format *)node->state;
    char what[MQ_ERROR_MESSAGE_MAX / 2];
    snprintf(what, sizeof what, "node '%s' (ImageDecoder): input 'encoded_stream'", node->name);
    struct mq_image image;
    if (mq_image_decode(encoded->data, (size_t)encoded->count, what, &image, err))
        return MQ_ERR;
    if (format == PIXELS_GRAY)
        mq_image_to_gray(&image);
    int64_t dims[3] = {image.height, image.width, image.channels};
    int rc = mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_UINT8, 3, dims, what, err);
    if (rc == MQ_OK) {
        size_t n = (size_t)image.width * (size_t)image.height;
        uint8_t *dst = outputs[0].data;
        if (format == PIXELS_BGR) {
            for (size_t i = 0; i < n; i++) {
                dst[3 * i] = image.pixels[3 * i + 2];
                dst[3 * i + 1] = image.pixels[3 * i + 1];
                dst[3 * i + 2] = image.pixels[3 * i];
            }
        } else {
            memcpy(dst, image.pixels, n * (size_t)image.channels);
        }
    }
    mq_image_free(&image);
    return rc;
}

const struct mq_kernel mq_kernels_image_decoder[] = {
    {"", "ImageDecoder", 20, 0, image_decoder_prepare, image_decoder_run, free},
    {0},
};
