/* WAV files: the RIFF header parsed by hand, samples to floats, resampling by libsamplerate. */
#include "calib/wav.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <samplerate.h>

#include "util/fileio.h"

#define MAX_FILE_BYTES (UINT64_C(4) << 30)
#define PROBE_BYTES 65536

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* `size` may be less than the file's (a probe): the data chunk is then trusted to fit in
   `file_size`. */
static int parse(const uint8_t *data, size_t size, uint64_t file_size, const char *name,
                 struct mq_wav_info *info, struct mq_error *err)
{
    memset(info, 0, sizeof *info);
    if (file_size == 0)
        return mq_error_set(err, "%s: an empty file (0 bytes)", name);
    if (size < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0)
        return mq_error_set(err, "%s: not a WAV file (no RIFF/WAVE header)", name);
    size_t at = 12;
    int have_fmt = 0, format = 0, block = 0;
    while (at + 8 <= size) {
        uint32_t length = le32(data + at + 4);
        const uint8_t *id = data + at, *body = data + at + 8;
        if (memcmp(id, "fmt ", 4) == 0) {
            if (length < 16 || length > size - at - 8)
                return mq_error_set(err, "%s: a damaged WAV format chunk (%u bytes)", name,
                                    length);
            format = (int)le16(body);
            info->channels = (int)le16(body + 2);
            info->sample_rate = le32(body + 4);
            block = (int)le16(body + 12);
            info->bits = (int)le16(body + 14);
            if (format == 0xFFFE) {
                if (length < 40)
                    return mq_error_set(err, "%s: a damaged WAVE_FORMAT_EXTENSIBLE chunk", name);
                format = (int)le16(body + 24); /* the sub-format GUID starts with the tag */
            }
            have_fmt = 1;
        } else if (memcmp(id, "data", 4) == 0) {
            if (!have_fmt)
                return mq_error_set(err, "%s: the data chunk comes before the format chunk",
                                    name);
            if (format != 1 && format != 3)
                return mq_error_set(err, "%s: WAV format %d is neither PCM (1) nor IEEE float "
                                    "(3): compressed WAV files are not read", name, format);
            if (info->channels < 1 || info->channels > 64)
                return mq_error_set(err, "%s: %d channels", name, info->channels);
            if (info->sample_rate < 1 || info->sample_rate > 1000000)
                return mq_error_set(err, "%s: a sample rate of %lld Hz", name,
                                    (long long)info->sample_rate);
            info->is_float = format == 3;
            int ok = info->is_float ? info->bits == 32 || info->bits == 64
                                    : info->bits == 8 || info->bits == 16 || info->bits == 24 ||
                                          info->bits == 32;
            if (!ok)
                return mq_error_set(err, "%s: %d-bit %s samples are not read (PCM 8/16/24/32, "
                                    "float 32/64)", name, info->bits,
                                    info->is_float ? "float" : "PCM");
            if (block != info->channels * info->bits / 8)
                return mq_error_set(err, "%s: block align %d does not match %d channels of %d "
                                    "bits", name, block, info->channels, info->bits);
            if ((uint64_t)length > file_size - at - 8)
                return mq_error_set(err, "%s: truncated: the data chunk announces %u bytes, the "
                                    "file holds %llu", name, length,
                                    (unsigned long long)(file_size - at - 8));
            info->frames = length / (uint32_t)block;
            info->data_offset = at + 8;
            if (info->frames == 0)
                return mq_error_set(err, "%s: holds no samples", name);
            return MQ_OK;
        }
        if (length > size - at - 8)
            break;
        at += 8 + (size_t)length + (length & 1);
    }
    return mq_error_set(err, "%s: no %s chunk in the WAV file (truncated?)", name,
                        have_fmt ? "data" : "format");
}

int mq_wav_parse(const uint8_t *data, size_t size, const char *name, struct mq_wav_info *info,
                 struct mq_error *err)
{
    return parse(data, size, size, name, info, err);
}

int mq_wav_probe_file(const char *path, struct mq_wav_info *info, struct mq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[PROBE_BYTES];
    size_t n = fread(head, 1, sizeof head, f);
    int bad = ferror(f) || fseek(f, 0, SEEK_END) != 0;
    long size = bad ? -1 : ftell(f);
    fclose(f);
    if (size < 0)
        return mq_error_set(err, "%s: cannot read", path);
    return parse(head, n, (uint64_t)size, path, info, err);
}

static float sample_at(const uint8_t *p, const struct mq_wav_info *info)
{
    switch (info->bits) {
    case 8: return ((float)p[0] - 128.0f) / 128.0f;
    case 16: return (float)(int16_t)le16(p) / 32768.0f;
    case 24: {
        int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24);
        return (float)((double)(v >> 8) / 8388608.0);
    }
    case 32:
        if (info->is_float) {
            float f;
            uint32_t u = le32(p);
            memcpy(&f, &u, 4);
            return f;
        }
        return (float)((double)(int32_t)le32(p) / 2147483648.0);
    default: { /* 64-bit float */
        double d;
        uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
        memcpy(&d, &u, 8);
        return (float)d;
    }
    }
}

int64_t mq_wav_resampled_length(int64_t frames, int64_t from, int64_t to)
{
    if (to <= 0 || to == from)
        return frames;
    return (int64_t)((__int128)frames * to / from);
}

int mq_wav_decode(const uint8_t *data, size_t size, const char *name, int mono, int64_t rate,
                  float **out, int64_t *n, int *channels, struct mq_error *err)
{
    struct mq_wav_info info;
    *out = NULL;
    if (parse(data, size, size, name, &info, err))
        return MQ_ERR;
    int ch = mono ? 1 : info.channels;
    float *samples = malloc(sizeof *samples * (size_t)info.frames * (size_t)ch);
    if (!samples)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory decoding", name);
    size_t width = (size_t)info.bits / 8;
    for (int64_t i = 0; i < info.frames; i++) {
        const uint8_t *p = data + info.data_offset + (size_t)i * width * (size_t)info.channels;
        if (mono) {
            double sum = 0.0;
            for (int c = 0; c < info.channels; c++)
                sum += sample_at(p + (size_t)c * width, &info);
            samples[i] = (float)(sum / info.channels);
        } else {
            for (int c = 0; c < ch; c++)
                samples[(size_t)i * (size_t)ch + (size_t)c] = sample_at(p + (size_t)c * width,
                                                                         &info);
        }
    }
    int64_t len = mq_wav_resampled_length(info.frames, info.sample_rate, rate);
    if (len != info.frames || (rate > 0 && rate != info.sample_rate)) {
        float *resampled = calloc((size_t)(len > 0 ? len : 1) * (size_t)ch, sizeof *resampled);
        if (!resampled) {
            free(samples);
            return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory resampling", name);
        }
        SRC_DATA d = {0};
        d.data_in = samples;
        d.input_frames = (long)info.frames;
        d.data_out = resampled;
        d.output_frames = (long)len;
        d.src_ratio = (double)rate / (double)info.sample_rate;
        int e = src_simple(&d, SRC_SINC_BEST_QUALITY, ch);
        free(samples);
        if (e) {
            free(resampled);
            return mq_error_set(err, "%s: resampling from %lld to %lld Hz failed: %s", name,
                                (long long)info.sample_rate, (long long)rate, src_strerror(e));
        }
        samples = resampled; /* frames libsamplerate did not produce stay 0 */
    }
    *out = samples;
    *n = len;
    *channels = ch;
    return MQ_OK;
}

int mq_wav_decode_file(const char *path, int mono, int64_t rate, float **out, int64_t *n,
                       int *channels, struct mq_error *err)
{
    uint8_t *data;
    size_t size;
    *out = NULL;
    if (mq_file_read(path, MAX_FILE_BYTES, &data, &size, err))
        return MQ_ERR;
    int rc = mq_wav_decode(data, size, path, mono, rate, out, n, channels, err);
    free(data);
    return rc;
}
