/*
 * WAV files for calibration: the RIFF/WAVE container parsed here (PCM 8, 16,
 * 24 and 32-bit, IEEE float 32 and 64-bit, WAVE_FORMAT_EXTENSIBLE of those),
 * samples converted to floats in [-1, 1), channels averaged on request, and
 * resampled with libsamplerate (best sinc).
 */
#ifndef MQ_CALIB_WAV_H
#define MQ_CALIB_WAV_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mq_wav_info {
    int channels;
    int64_t sample_rate;
    int bits;
    int is_float;
    int64_t frames;            /* samples per channel */
    size_t data_offset;        /* of the first sample in the file */
};

/* Parses the header of a whole file in memory; `name` is for messages. */
int mq_wav_parse(const uint8_t *data, size_t size, const char *name, struct mq_wav_info *info,
                 struct mq_error *err);
/* Reads and parses only the header of a file (its first 64 KiB). */
int mq_wav_probe_file(const char *path, struct mq_wav_info *info, struct mq_error *err);

/*
 * Decodes a whole file to info->frames x channels floats (channels averaged
 * to one when mono), resampled to `rate` (0: keep the file's).  *out is
 * malloc'd, *n its length per channel: floor(frames * rate / file rate).
 */
int mq_wav_decode_file(const char *path, int mono, int64_t rate, float **out, int64_t *n,
                       int *channels, struct mq_error *err);
int mq_wav_decode(const uint8_t *data, size_t size, const char *name, int mono, int64_t rate,
                  float **out, int64_t *n, int *channels, struct mq_error *err);
/* The length per channel mq_wav_decode gives for a file of `frames` at `from` Hz. */
int64_t mq_wav_resampled_length(int64_t frames, int64_t from, int64_t to);

#endif
