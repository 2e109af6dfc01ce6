/*
 * libFuzzer target: a WAV file as a folder of WAV files feeds calibration
 * (mq_wav_parse, mq_wav_decode with channel averaging and resampling by
 * libsamplerate).  Properties beyond "no crash": the decoded length is the one
 * mq_wav_resampled_length promises, and PCM samples decode within [-1, 1].
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "calib/wav.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_error err;
    struct mq_wav_info info;
    if (mq_wav_parse(data, size, "fuzz.wav", &info, &err) != 0)
        return 0;
    if (info.frames < 1 || info.data_offset > size)
        abort();
    if (info.frames > 1 << 16)
        return 0; /* long files only slow the fuzzer down */
    int64_t rates[2] = {0, info.sample_rate / 2 + 1};
    for (int r = 0; r < 2; r++) {
        float *samples;
        int64_t n;
        int channels;
        if (mq_wav_decode(data, size, "fuzz.wav", r == 1, rates[r], &samples, &n, &channels,
                          &err) != 0)
            abort(); /* parsed headers decode */
        if (n != mq_wav_resampled_length(info.frames, info.sample_rate, rates[r]))
            abort();
        if (r == 0 && !info.is_float)
            for (int64_t i = 0; i < n * channels; i++)
                if (!(samples[i] >= -1.0f && samples[i] <= 1.0f))
                    abort();
        free(samples);
    }
    return 0;
}
