/* JPEG and PNG files to 8-bit RGB pixels through libjpeg-turbo and libpng; RGB to luma. */
#include "codec/image.h"
#include "core/tensor.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jpeglib.h>
#include <png.h>

#include "util/fileio.h"

#define MAX_PIXELS (INT64_C(1) << 28)
#define MAX_FILE_BYTES (UINT64_C(1) << 30)

enum mq_image_kind mq_image_kind_of_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return MQ_IMAGE_NONE;
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
        return MQ_IMAGE_JPEG;
    if (strcasecmp(dot, ".png") == 0)
        return MQ_IMAGE_PNG;
    return MQ_IMAGE_NONE;
}

void mq_image_free(struct mq_image *image)
{
    mq_memory_release(image->reserved);
    free(image->pixels);
    memset(image, 0, sizeof *image);
}

static int check_size(const char *name, int64_t w, int64_t h, struct mq_error *err)
{
    if (w < 1 || h < 1)
        return mq_error_set(err, "%s: the image has no pixels (%lldx%lld)", name, (long long)w,
                            (long long)h);
    if (w * h > MAX_PIXELS)
        return mq_error_set(err, "%s: %lldx%lld pixels is more than the 2^28 this reader takes",
                            name, (long long)w, (long long)h);
    return MQ_OK;
}

/* ---- JPEG ------------------------------------------------------------------------------ */

struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warned;
};

static void jpeg_fail(j_common_ptr cinfo)
{
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->message);
    longjmp(f->jump, 1);
}

/* Warnings (a premature end of data, corrupt entropy data) mean a damaged file: remember
   the first, print nothing. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    if (level < 0 && !f->warned) {
        f->warned = 1;
        (*cinfo->err->format_message)(cinfo, f->message);
    }
}

static int decode_jpeg(const uint8_t *data, size_t size, const char *name, int header_only,
                       struct mq_image *out, struct mq_error *err)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_failure failure;
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.mgr);
    failure.mgr.error_exit = jpeg_fail;
    failure.mgr.emit_message = jpeg_message;
    /* volatile: written after setjmp and read after a longjmp back. */
    uint8_t *volatile pixels = NULL;
    volatile uint64_t reserved = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        mq_memory_release(reserved);
        return mq_error_set(err, "%s: not a readable JPEG: %s", name, failure.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int rc = check_size(name, cinfo.image_width, cinfo.image_height, err);
    if (rc == MQ_OK && (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK))
        rc = mq_error_set(err, "%s: a CMYK JPEG: convert it to RGB first (colour profiles "
                          "decide how; e.g. `convert IN -colorspace sRGB OUT`)", name);
    if (rc || header_only) {
        out->width = (int)cinfo.image_width;
        out->height = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    cinfo.out_color_space = JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * 3;
    uint64_t bytes = (uint64_t)stride * cinfo.output_height;
    if (mq_memory_reserve(bytes, name, err)) {
        jpeg_destroy_decompress(&cinfo);
        return MQ_ERR_MEMORY;
    }
    reserved = bytes;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        mq_memory_release(reserved);
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory decoding the image", name);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = 3;
    out->pixels = pixels;
    out->reserved = reserved;
    jpeg_destroy_decompress(&cinfo);
    if (failure.warned) {
        mq_image_free(out);
        return mq_error_set(err, "%s: a damaged JPEG (truncated or corrupt): %s", name,
                            failure.message);
    }
    return MQ_OK;
}

/* ---- PNG ------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the chunks before the first IDAT: the header's bit depth, and acTL (animation),
   which libpng may not know and would decode as the first frame. */
static int scan_png(const uint8_t *data, size_t size, const char *name, struct mq_error *err)
{
    static const uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (size < 8 + 25 || memcmp(data, signature, 8) != 0 || memcmp(data + 12, "IHDR", 4) != 0)
        return mq_error_set(err, "%s: not a PNG file (no PNG signature and header)", name);
    if (data[24] == 16)
        return mq_error_set(err, "%s: a 16-bit PNG: 8 bits per channel are read (convert it, "
                            "e.g. `convert IN -depth 8 OUT`)", name);
    size_t at = 8;
    while (at + 12 <= size) {
        uint32_t length = be32(data + at);
        const uint8_t *type = data + at + 4;
        if (memcmp(type, "IDAT", 4) == 0)
            break;
        if (memcmp(type, "acTL", 4) == 0)
            return mq_error_set(err, "%s: an animated PNG: one still image per file is read",
                                name);
        if (length > size - at - 12)
            break; /* libpng reports the truncation */
        at += 12 + (size_t)length;
    }
    return MQ_OK;
}

struct png_reading {
    const uint8_t *data;
    size_t size, at;
    jmp_buf jump;
    char message[200];
};

static void png_fail(png_structp png, png_const_charp message)
{
    struct png_reading *r = png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", message);
    longjmp(r->jump, 1);
}

static void png_quiet(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static void png_read_memory(png_structp png, png_bytep dst, png_size_t n)
{
    struct png_reading *r = png_get_io_ptr(png);
    if (n > r->size - r->at)
        png_error(png, "truncated file");
    memcpy(dst, r->data + r->at, n);
    r->at += n;
}

static int decode_png(const uint8_t *data, size_t size, const char *name, int header_only,
                      struct mq_image *out, struct mq_error *err)
{
    if (scan_png(data, size, name, err))
        return MQ_ERR;
    struct png_reading r;
    memset(&r, 0, sizeof r);
    r.data = data;
    r.size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", name);
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile uint64_t reserved = 0;
    if (setjmp(r.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        mq_memory_release(reserved);
        return mq_error_set(err, "%s: not a readable PNG: %s", name, r.message);
    }
    png_set_read_fn(png, &r, png_read_memory);
    png_set_user_limits(png, 1 << 16, 1 << 16);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int rc = check_size(name, w, h, err);
    if (rc || header_only) {
        out->width = (int)w;
        out->height = (int)h;
        png_destroy_read_struct(&png, &info, NULL);
        return rc;
    }
    /* Palette, low-depth gray and tRNS expand to 8-bit; gray becomes RGB; alpha is dropped
       (as Pillow's convert("RGB") does); no gamma correction: the stored values are fed. */
    png_set_expand(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected row layout after conversion to RGB");
    size_t stride = (size_t)w * 3;
    if (mq_memory_reserve((uint64_t)stride * h, name, err)) {
        png_destroy_read_struct(&png, &info, NULL);
        return MQ_ERR_MEMORY;
    }
    reserved = (uint64_t)stride * h;
    pixels = malloc(stride * h);
    rows = malloc(sizeof *rows * h);
    if (!pixels || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->pixels = pixels;
    out->reserved = reserved;
    return MQ_OK;
}

void mq_image_to_gray(struct mq_image *image)
{
    if (image->channels != 3)
        return;
    size_t n = (size_t)image->width * (size_t)image->height;
    uint8_t *p = image->pixels;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
        p[i] = (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
    image->channels = 1;
}

/* ---- entry points ---------------------------------------------------------------------- */

/* Formats recognised only to name them in the refusal: signature bytes at an offset. */
static const struct other_signature {
    const char *format;
    size_t offset, length;
    const char *bytes;
} other_signatures[] = {
    {"BMP", 0, 2, "BM"},
    {"TIFF", 0, 4, "II*\0"},
    {"TIFF", 0, 4, "MM\0*"},
    {"WebP", 8, 4, "WEBP"},
    {"JPEG 2000", 0, 12, "\0\0\0\x0cjP  \r\n\x87\n"},
    {"JPEG 2000", 0, 4, "\xff\x4f\xff\x51"},
    {"GIF", 0, 4, "GIF8"},
    {"PNM", 0, 2, "P1"}, {"PNM", 0, 2, "P2"}, {"PNM", 0, 2, "P3"},
    {"PNM", 0, 2, "P4"}, {"PNM", 0, 2, "P5"}, {"PNM", 0, 2, "P6"},
};

static const char *other_format(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof other_signatures / sizeof other_signatures[0]; i++) {
        const struct other_signature *s = &other_signatures[i];
        if (size >= s->offset + s->length && memcmp(data + s->offset, s->bytes, s->length) == 0)
            return s->format;
    }
    return NULL;
}

static int decode(const uint8_t *data, size_t size, const char *name, int header_only,
                  struct mq_image *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (size == 0)
        return mq_error_set(err, "%s: an empty file (0 bytes)", name);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, name, header_only, out, err);
    if (size >= 8 && data[0] == 137 && memcmp(data + 1, "PNG", 3) == 0)
        return decode_png(data, size, name, header_only, out, err);
    const char *format = other_format(data, size);
    if (format)
        return mq_error_set(err, "%s: a %s image: format not decoded (only JPEG and PNG are)",
                            name, format);
    return mq_error_set(err, "%s: neither a JPEG nor a PNG file (unknown signature)", name);
}

int mq_image_decode(const uint8_t *data, size_t size, const char *name, struct mq_image *out,
                    struct mq_error *err)
{
    return decode(data, size, name, 0, out, err);
}

int mq_image_decode_file(const char *path, struct mq_image *out, struct mq_error *err)
{
    uint8_t *data;
    size_t size;
    memset(out, 0, sizeof *out);
    if (mq_file_read(path, MAX_FILE_BYTES, &data, &size, err))
        return MQ_ERR;
    int rc = decode(data, size, path, 0, out, err);
    free(data);
    return rc;
}
