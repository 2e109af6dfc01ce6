/*
 * ImageDecoder (src/interp/ops/image_decoder.c): a hand-made 2 x 2 RGB PNG
 * decoded in each pixel format (Grayscale with Pillow's "L" weights, worked
 * out by hand), and the refusals: other formats named, damaged data, a bad
 * pixel_format, a wrongly typed input.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

/* 2 x 2 RGB PNG: (255,0,0) (10,20,30) / (0,255,0) (200,100,50). */
static const uint8_t tiny_png[79] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00,
    0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0, 0x25, 0x22, 0xc7, 0xc0, 0xf0, 0x9f, 0xe1, 0x44,
    0x8a, 0x11, 0x00, 0x17, 0x56, 0x03, 0x99, 0x47, 0xd9, 0xb9, 0x8b, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static struct mq_tensor decode(const char *pixel_format, const uint8_t *data, int64_t size)
{
    Onnx__NodeProto *n = oh_node("ImageDecoder", 1, 1);
    if (pixel_format)
        oh_attr_string(n, "pixel_format", pixel_format);
    struct mq_tensor in = oh_u8(1, OH_DIMS(size), data);
    return oh_run1_take_all(n, 20, &in, 1);
}

static void assert_u8(const struct mq_tensor *t, const int64_t *dims, const uint8_t *expected)
{
    oh_assert_shape(t, 3, dims);
    ck_assert_int_eq(t->dtype, MQ_DTYPE_UINT8);
    for (int64_t i = 0; i < t->count; i++)
        ck_assert_msg(((const uint8_t *)t->data)[i] == expected[i], "element %lld is %d, not %d",
                      (long long)i, ((const uint8_t *)t->data)[i], expected[i]);
}

START_TEST(decodes_png_in_each_pixel_format)
{
    struct mq_tensor y = decode(NULL, tiny_png, sizeof tiny_png); /* RGB is the default */
    assert_u8(&y, OH_DIMS(2, 2, 3), (const uint8_t[]){255, 0, 0, 10, 20, 30, 0, 255, 0, 200, 100, 50});
    mq_tensor_free(&y);
    y = decode("BGR", tiny_png, sizeof tiny_png);
    assert_u8(&y, OH_DIMS(2, 2, 3), (const uint8_t[]){0, 0, 255, 30, 20, 10, 0, 255, 0, 50, 100, 200});
    mq_tensor_free(&y);
    /* (r*19595 + g*38470 + b*7471 + 2^15) >> 16 */
    y = decode("Grayscale", tiny_png, sizeof tiny_png);
    assert_u8(&y, OH_DIMS(2, 2, 1), (const uint8_t[]){76, 18, 150, 124});
    mq_tensor_free(&y);
}
END_TEST

static void expect_refusal(const char *pixel_format, const uint8_t *data, int64_t size,
                           const char *needle)
{
    Onnx__NodeProto *n = oh_node("ImageDecoder", 1, 1);
    if (pixel_format)
        oh_attr_string(n, "pixel_format", pixel_format);
    struct mq_tensor in = oh_u8(1, OH_DIMS(size), data);
    oh_expect_error_take_all(n, 20, &in, 1, needle);
}

START_TEST(refuses_other_formats_and_bad_input)
{
    static const uint8_t bmp[16] = {'B', 'M', 0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0};
    expect_refusal(NULL, bmp, sizeof bmp, "a BMP image: format not decoded");
    static const uint8_t webp[16] = {'R', 'I', 'F', 'F', 8, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
    expect_refusal(NULL, webp, sizeof webp, "a WebP image: format not decoded");
    static const uint8_t tiff[8] = {'I', 'I', '*', 0, 8, 0, 0, 0};
    expect_refusal(NULL, tiff, sizeof tiff, "a TIFF image");
    expect_refusal(NULL, tiny_png, 40, "not a readable PNG");
    expect_refusal(NULL, (const uint8_t *)"hello", 5, "neither a JPEG nor a PNG");
    expect_refusal("YUV", tiny_png, sizeof tiny_png, "attribute 'pixel_format' is 'YUV'");

    Onnx__NodeProto *n = oh_node("ImageDecoder", 1, 1);
    struct mq_tensor in = oh_u8(2, OH_DIMS(1, 79), tiny_png);
    oh_expect_error_take_all(n, 20, &in, 1, "expected a 1-D uint8 tensor");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_image_decoder");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, decodes_png_in_each_pixel_format);
    tcase_add_test(tc, refuses_other_formats_and_bad_input);
    return mq_check_run(s, tc);
}
