/* Pre-processing keys, the WAV parser and the image path, on hand-made bytes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "calib/image.h"
#include "calib/preprocess.h"
#include "core/tensor.h"
#include "calib/wav.h"
#include "check_main.h"

START_TEST(preprocess_keys_parse)
{
    struct mq_preprocess p;
    struct mq_error err;
    mq_preprocess_init(&p);
    ck_assert_int_eq(p.any, 0);
    ck_assert_int_eq(mq_preprocess_set(&p, "image-size", "320x240", &err), 0);
    ck_assert_int_eq(p.width, 320);
    ck_assert_int_eq(p.height, 240);
    ck_assert_int_eq(mq_preprocess_set(&p, "scale", "1/255", &err), 0);
    ck_assert_float_eq_tol(p.scale, 1.0f / 255.0f, 1e-9f);
    ck_assert_int_eq(mq_preprocess_set(&p, "mean", "0.485,0.456,0.406", &err), 0);
    ck_assert_int_eq(p.n_mean, 3);
    ck_assert_float_eq_tol(p.mean[2], 0.406f, 1e-7f);
    ck_assert_int_eq(mq_preprocess_set(&p, "fill", "sr=16000", &err), 0);
    ck_assert_str_eq(p.fill_name[0], "sr");
    ck_assert_int_eq(mq_preprocess_set(&p, "carry", "state=stateN", &err), 0);
    ck_assert_str_eq(p.carry_output[0], "stateN");
    ck_assert_int_eq(p.any, 1);
    /* Bad values name the key and the value. */
    ck_assert_int_eq(mq_preprocess_set(&p, "std", "0.2,0", &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "--std"));
    ck_assert_int_eq(mq_preprocess_set(&p, "image-size", "224x", &err), MQ_ERR_USAGE);
    ck_assert_int_eq(mq_preprocess_set(&p, "scale", "1/0", &err), MQ_ERR_USAGE);
    ck_assert_int_eq(mq_preprocess_set(&p, "mean", "1,2,3,4,5", &err), MQ_ERR_USAGE);
    ck_assert_int_eq(mq_preprocess_set(&p, "resize", "crop", &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "'crop'"));
    ck_assert_int_eq(mq_preprocess_set(&p, "colour", "rgb", &err), MQ_ERR_USAGE);
    ck_assert(!mq_preprocess_is_key("colour"));
    ck_assert(mq_preprocess_is_key("sample-rate"));
}
END_TEST

START_TEST(preprocess_file_names_its_line)
{
    char path[] = "/tmp/mq-pre-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# squeezenet\n\nresize shorter\n--crop center\ncolor = bgr\n"
                        "mean: 104,117,123 # per channel\nfilter lanczos\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (int)sizeof text - 1);
    close(fd);
    struct mq_preprocess p;
    struct mq_error err;
    mq_preprocess_init(&p);
    ck_assert_int_ne(mq_preprocess_load(&p, path, &err), 0);
    ck_assert_msg(strstr(err.message, "line 7") && strstr(err.message, "lanczos"), "%s",
                  err.message);
    ck_assert_int_eq(p.resize, MQ_RESIZE_SHORTER);
    ck_assert_int_eq(p.crop_center, 1);
    ck_assert_int_eq(p.color, MQ_COLOR_BGR);
    ck_assert_float_eq(p.mean[1], 117.0f);
    unlink(path);
}
END_TEST

/* A RIFF/WAVE file: fmt chunk of tag/channels/rate/bits, then an odd-sized LIST chunk, then
   data. */
static size_t make_wav(uint8_t *buf, int tag, int channels, int rate, int bits,
                       const void *data, uint32_t data_size)
{
    uint8_t *p = buf;
#define PUT32(v) do { uint32_t v_ = (uint32_t)(v); memcpy(p, &v_, 4); p += 4; } while (0)
#define PUT16(v) do { uint16_t v_ = (uint16_t)(v); memcpy(p, &v_, 2); p += 2; } while (0)
    memcpy(p, "RIFF", 4), p += 4;
    PUT32(4 + 24 + 8 + 6 + 8 + data_size);
    memcpy(p, "WAVEfmt ", 8), p += 8;
    PUT32(16);
    PUT16(tag);
    PUT16(channels);
    PUT32(rate);
    PUT32(rate * channels * bits / 8);
    PUT16(channels * bits / 8);
    PUT16(bits);
    memcpy(p, "LIST", 4), p += 4;
    PUT32(5);
    memcpy(p, "abcde\0", 6), p += 6;
    memcpy(p, "data", 4), p += 4;
    PUT32(data_size);
    memcpy(p, data, data_size);
    p += data_size;
#undef PUT32
#undef PUT16
    return (size_t)(p - buf);
}

START_TEST(wav_formats_decode)
{
    uint8_t buf[512];
    struct mq_error err;
    float *s;
    int64_t n;
    int ch;
    const int16_t pcm16[4] = {0, 16384, -32768, 32767};
    size_t size = make_wav(buf, 1, 2, 8000, 16, pcm16, sizeof pcm16);
    ck_assert_int_eq(mq_wav_decode(buf, size, "a.wav", 0, 0, &s, &n, &ch, &err), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ch, 2);
    ck_assert_float_eq(s[1], 0.5f);
    ck_assert_float_eq(s[2], -1.0f);
    free(s);
    ck_assert_int_eq(mq_wav_decode(buf, size, "a.wav", 1, 0, &s, &n, &ch, &err), 0);
    ck_assert_int_eq(ch, 1);
    ck_assert_float_eq(s[0], 0.25f); /* (0 + 0.5) / 2 */
    free(s);
    const uint8_t pcm24[6] = {0x00, 0x00, 0x80, 0x00, 0x00, 0x40}; /* -1, 0.5 */
    size = make_wav(buf, 1, 1, 8000, 24, pcm24, sizeof pcm24);
    ck_assert_int_eq(mq_wav_decode(buf, size, "b.wav", 0, 0, &s, &n, &ch, &err), 0);
    ck_assert_float_eq(s[0], -1.0f);
    ck_assert_float_eq(s[1], 0.5f);
    free(s);
    const uint8_t pcm8[2] = {0, 192};
    size = make_wav(buf, 1, 1, 8000, 8, pcm8, sizeof pcm8);
    ck_assert_int_eq(mq_wav_decode(buf, size, "c.wav", 0, 0, &s, &n, &ch, &err), 0);
    ck_assert_float_eq(s[0], -1.0f);
    ck_assert_float_eq(s[1], 0.5f);
    free(s);
    const float f32[3] = {0.25f, -0.75f, 2.0f};
    size = make_wav(buf, 3, 1, 8000, 32, f32, sizeof f32);
    ck_assert_int_eq(mq_wav_decode(buf, size, "d.wav", 0, 0, &s, &n, &ch, &err), 0);
    ck_assert_float_eq(s[2], 2.0f);
    free(s);
}
END_TEST

START_TEST(wav_resamples_to_the_promised_length)
{
    static int16_t tone[8000];
    for (int i = 0; i < 8000; i++)
        tone[i] = (int16_t)(10000.0 * sin(i * 2 * M_PI * 440.0 / 8000.0));
    static uint8_t buf[20000];
    size_t size = make_wav(buf, 1, 1, 8000, 16, tone, sizeof tone);
    struct mq_error err;
    float *s;
    int64_t n;
    int ch;
    ck_assert_int_eq(mq_wav_decode(buf, size, "t.wav", 0, 16000, &s, &n, &ch, &err), 0);
    ck_assert_int_eq(n, 16000);
    ck_assert_int_eq(n, mq_wav_resampled_length(8000, 8000, 16000));
    /* Mid-file, the 440 Hz tone at 16 kHz: sample 2i is the 8 kHz sample i. */
    for (int i = 2000; i < 6000; i += 97)
        ck_assert_float_eq_tol(s[2 * i], tone[i] / 32768.0f, 2e-3f);
    free(s);
    ck_assert_int_eq(mq_wav_resampled_length(44100, 44100, 16000), 16000);
    ck_assert_int_eq(mq_wav_resampled_length(100, 8000, 0), 100);
}
END_TEST

START_TEST(wav_refusals_name_the_file)
{
    uint8_t buf[256] = {0};
    struct mq_error err;
    struct mq_wav_info info;
    const int16_t pcm[2] = {1, 2};
    ck_assert_int_ne(mq_wav_parse(buf, 0, "empty.wav", &info, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "empty.wav: an empty file"));
    size_t size = make_wav(buf, 1, 1, 8000, 16, pcm, sizeof pcm);
    ck_assert_int_ne(mq_wav_parse(buf, size - 2, "cut.wav", &info, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "cut.wav: truncated"));
    size = make_wav(buf, 2, 1, 8000, 16, pcm, sizeof pcm); /* ADPCM */
    ck_assert_int_ne(mq_wav_parse(buf, size, "adpcm.wav", &info, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "format 2"));
    size = make_wav(buf, 1, 1, 8000, 12, pcm, sizeof pcm);
    ck_assert_int_ne(mq_wav_parse(buf, size, "odd.wav", &info, &err), 0);
    size = make_wav(buf, 1, 1, 8000, 16, pcm, 0);
    ck_assert_int_ne(mq_wav_parse(buf, size, "none.wav", &info, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "no samples"));
    ck_assert_int_ne(mq_wav_parse((const uint8_t *)"RIFF\0\0\0\0AVI ", 12, "x.wav", &info, &err),
                     0);
}
END_TEST

START_TEST(image_refusals_name_the_file)
{
    struct mq_error err;
    struct mq_image image;
    ck_assert_int_ne(mq_image_decode((const uint8_t *)"", 0, "e.jpg", &image, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "e.jpg: an empty file"));
    const uint8_t jpeg_head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F'};
    ck_assert_int_ne(mq_image_decode(jpeg_head, sizeof jpeg_head, "cut.jpg", &image, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "cut.jpg: not a readable JPEG"));
    /* A PNG header announcing 16 bits per channel. */
    const uint8_t png16[33] = {137, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D',
                               'R', 0, 0, 0, 4, 0, 0, 0, 4, 16, 2, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_int_ne(mq_image_decode(png16, sizeof png16, "deep.png", &image, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "deep.png: a 16-bit PNG"));
    ck_assert_int_eq(mq_image_kind_of_name("A.JPEG"), MQ_IMAGE_JPEG);
    ck_assert_int_eq(mq_image_kind_of_name("x.png"), MQ_IMAGE_PNG);
    ck_assert_int_eq(mq_image_kind_of_name("labels.npy"), MQ_IMAGE_NONE);
}
END_TEST

/* Decoded and resized pixels count against the memory cap (--max-memory) and leave it when freed. */
START_TEST(image_pixels_count_against_the_memory_cap)
{
    enum { W = 64, H = 48 };
    static uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)(i * 7);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = W;
    img.height = H;
    img.format = PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    ck_assert(png_image_write_to_memory(&img, NULL, &size, 0, rgb, 0, NULL));
    uint8_t *png = malloc(size);
    ck_assert(png_image_write_to_memory(&img, png, &size, 0, rgb, 0, NULL));

    uint64_t base = mq_memory_in_use();
    struct mq_image image;
    struct mq_error err;
    mq_memory_set_limit(base + W * H * 3 - 1);
    ck_assert_int_eq(mq_image_decode(png, size, "big.png", &image, &err), MQ_ERR_MEMORY);
    ck_assert_msg(strstr(err.message, "big.png") && strstr(err.message, "--max-memory"), "%s",
                  err.message);
    ck_assert_uint_eq(mq_memory_in_use(), base);
    mq_memory_set_limit(base + W * H * 3 + W * H * 3 / 4);
    ck_assert_int_eq(mq_image_decode(png, size, "ok.png", &image, &err), MQ_OK);
    ck_assert_uint_eq(mq_memory_in_use(), base + W * H * 3);
    ck_assert(memcmp(image.pixels, rgb, sizeof rgb) == 0);
    /* twice the size does not fit beside the decoded image; half the size does */
    ck_assert_int_eq(mq_image_resize(&image, 2 * W, 2 * H, MQ_FILTER_BILINEAR, &err),
                     MQ_ERR_MEMORY);
    ck_assert_msg(strstr(err.message, "--max-memory"), "%s", err.message);
    ck_assert_uint_eq(mq_memory_in_use(), base + W * H * 3);
    ck_assert_int_eq(mq_image_resize(&image, W / 2, H / 2, MQ_FILTER_BILINEAR, &err), MQ_OK);
    ck_assert_uint_eq(mq_memory_in_use(), base + W * H * 3 / 4);
    mq_image_free(&image);
    ck_assert_uint_eq(mq_memory_in_use(), base);
    mq_memory_set_limit(0);
    free(png);
}
END_TEST

START_TEST(image_preprocess_orders_channels_and_normalises)
{
    /* A 2x1 image, red then blue; stretched to itself, BGR, NCHW, (x - 10) / 2. */
    uint8_t *px = malloc(6);
    const uint8_t pixels[6] = {200, 0, 0, 0, 0, 100};
    memcpy(px, pixels, 6);
    struct mq_image image = {2, 1, 3, px, 0};
    struct mq_preprocess p;
    mq_preprocess_init(&p);
    p.color = MQ_COLOR_BGR;
    p.mean[0] = 10.0f;
    p.std[0] = 2.0f;
    float out[6];
    struct mq_error err;
    ck_assert_int_eq(mq_image_preprocess(&image, &p, 2, 1, 3, 0, out, &err), 0);
    /* channel 0 is blue: 0 then 100 */
    ck_assert_float_eq(out[0], -5.0f);
    ck_assert_float_eq(out[1], 45.0f);
    ck_assert_float_eq(out[4], 95.0f); /* red of pixel 0 */
    mq_image_free(&image);
    /* A uniform image stays uniform whatever the resize. */
    struct mq_image flat = {37, 23, 3, malloc(37 * 23 * 3), 0};
    memset(flat.pixels, 77, 37 * 23 * 3);
    mq_preprocess_init(&p);
    p.resize = MQ_RESIZE_SHORTER;
    p.crop_center = 1;
    p.filter = MQ_FILTER_BICUBIC;
    float big[3 * 16 * 16];
    ck_assert_int_eq(mq_image_preprocess(&flat, &p, 16, 16, 3, 1, big, &err), 0);
    for (int i = 0; i < 3 * 16 * 16; i++)
        ck_assert_float_eq(big[i], 77.0f);
    mq_image_free(&flat);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib_user");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, preprocess_keys_parse);
    tcase_add_test(tc, preprocess_file_names_its_line);
    tcase_add_test(tc, wav_formats_decode);
    tcase_add_test(tc, wav_resamples_to_the_promised_length);
    tcase_add_test(tc, wav_refusals_name_the_file);
    tcase_add_test(tc, image_refusals_name_the_file);
    tcase_add_test(tc, image_preprocess_orders_channels_and_normalises);
    tcase_add_test(tc, image_pixels_count_against_the_memory_cap);
    return mq_check_run(s, tc);
}
