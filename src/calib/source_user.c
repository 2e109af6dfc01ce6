/* Samples from folders of images or WAV files: binding to the graph input, frames, loading. */
#include "calib/source_user.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/image.h"
#include "calib/wav.h"

/* A graph input as declared: type and shape, -1 for a free dimension. */
struct declared {
    const char *name;
    int dtype;
    int rank;
    int64_t dims[MQ_MAX_RANK];
};

/* One decoded, resampled WAV file, shared by the threads loading its frames. */
struct decoded_audio {
    int file;
    float *samples;
    int64_t length;
    int users;
};

struct mq_user_samples {
    enum mq_user_kind kind;
    struct mq_preprocess pre;
    int n_inputs, feed;                /* feed: the input the files feed */
    struct declared *inputs;
    double *fill;                      /* per input, the --fill value (feed's unused) */
    const char **carried_from;         /* per input, the --carry output, or NULL */
    int n_files;
    char **files;
    /* the fed tensor */
    int rank;
    int64_t dims[MQ_MAX_RANK];
    int out_w, out_h, channels, nhwc; /* images */
    int64_t frame, hop;                /* audio */
    int64_t n_samples;
    int *sample_file;                  /* audio: per sample, its file and frame */
    int64_t *sample_frame;
    char **names;                      /* audio: "FILE.wav[frame K]" */
    pthread_mutex_t lock;
    struct decoded_audio cache;
};

static int declared_from(struct declared *d, const Onnx__ValueInfoProto *v)
{
    d->name = mq_str(v->name);
    d->dtype = 0;
    d->rank = -1;
    const Onnx__TypeProto *t = v->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return MQ_OK;
    if (t->tensor_type->has_elem_type)
        d->dtype = t->tensor_type->elem_type;
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    if (!s)
        return MQ_OK;
    if (s->n_dim > MQ_MAX_RANK)
        return MQ_ERR;
    d->rank = (int)s->n_dim;
    for (int i = 0; i < d->rank; i++)
        d->dims[i] = s->dim[i]->value_case ==
                             ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                         ? s->dim[i]->dim_value
                         : -1;
    return MQ_OK;
}

static void describe(const struct declared *d, char *buf, size_t size)
{
    char shape[200];
    int64_t dims[MQ_MAX_RANK];
    for (int i = 0; i < d->rank; i++)
        dims[i] = d->dims[i];
    if (d->rank < 0)
        snprintf(buf, size, "'%s' %s, any shape", d->name,
                 d->dtype ? mq_dtype_name(d->dtype) : "any type");
    else
        snprintf(buf, size, "'%s' %s %s", d->name,
                 d->dtype ? mq_dtype_name(d->dtype) : "any type",
                 mq_shape_format(d->rank, dims, shape, sizeof shape));
}

/* ---- binding ---------------------------------------------------------------------------- */

static int bind_inputs(struct mq_user_samples *s, struct mq_error *err)
{
    s->feed = -1;
    for (int k = 0; k < s->n_inputs; k++) {
        const struct declared *d = &s->inputs[k];
        int f = 0;
        while (f < s->pre.n_fill && strcmp(s->pre.fill_name[f], d->name) != 0)
            f++;
        int c = 0;
        while (c < s->pre.n_carry && strcmp(s->pre.carry_input[c], d->name) != 0)
            c++;
        if (c < s->pre.n_carry)
            s->carried_from[k] = s->pre.carry_output[c]; /* zeros for a file's first frame */
        if (f < s->pre.n_fill || c < s->pre.n_carry) {
            s->fill[k] = f < s->pre.n_fill ? s->pre.fill_value[f] : 0.0;
            if (d->rank < 0 || !d->dtype)
                return mq_error_set(err, "--fill %s: the input has no declared type and shape "
                                    "to fill", d->name);
            /* A free dimension (a batch) is 1: samples are fed one at a time. */
            for (int i = 0; i < d->rank; i++)
                if (d->dims[i] < 0)
                    s->inputs[k].dims[i] = 1;
            if (!mq_dtype_size(d->dtype))
                return mq_error_set(err, "--fill %s: element type %s cannot be filled",
                                    d->name, mq_dtype_name(d->dtype));
            continue;
        }
        if (s->feed >= 0 || (d->dtype && d->dtype != MQ_DTYPE_FLOAT)) {
            char a[300];
            describe(d, a, sizeof a);
            return mq_error_set(err, "the model's input %s has no data: %s feed one float "
                                "input, the others take --fill NAME=VALUE", a,
                                s->kind == MQ_USER_IMAGES ? "images" : "WAV files");
        }
        s->feed = k;
    }
    for (int f = 0; f < s->pre.n_fill; f++) {
        int k = 0;
        while (k < s->n_inputs && strcmp(s->pre.fill_name[f], s->inputs[k].name) != 0)
            k++;
        if (k == s->n_inputs)
            return mq_error_set(err, "--fill %s: the model has no input of that name",
                                s->pre.fill_name[f]);
    }
    if (s->feed < 0)
        return mq_error_set(err, "every graph input has a --fill value: none is left for the "
                            "files to feed");
    return MQ_OK;
}

static int bind_image(struct mq_user_samples *s, struct mq_error *err)
{
    if (s->pre.n_carry)
        return mq_error_set(err, "--carry links the frames of a WAV file: images have none");
    const struct declared *d = &s->inputs[s->feed];
    char a[300];
    describe(d, a, sizeof a);
    if (d->rank != 4 && d->rank != 3)
        return mq_error_set(err, "images feed an input of rank 4 (N,C,H,W or N,H,W,C) or 3, but "
                            "the model's input is %s", a);
    int lead = d->rank - 3;
    if (lead && d->dims[0] > 1)
        return mq_error_set(err, "the model's input %s takes a batch of %" PRId64 ": images are "
                            "fed one at a time (batch 1)", a, d->dims[0]);
    const int64_t *hw = d->dims + lead;
    int nhwc = s->pre.layout == MQ_LAYOUT_NHWC;
    if (s->pre.layout == MQ_LAYOUT_AUTO)
        nhwc = (hw[2] == 1 || hw[2] == 3) && !(hw[0] == 1 || hw[0] == 3);
    int64_t c = nhwc ? hw[2] : hw[0], h = nhwc ? hw[0] : hw[1], w = nhwc ? hw[1] : hw[2];
    int want_c = s->pre.color == MQ_COLOR_GRAY ? 1 : 3;
    if (c >= 0 && c != want_c)
        return mq_error_set(err, "--color %s gives %d channel%s but the model's input %s has %"
                            PRId64 " (layout %s)", s->pre.color == MQ_COLOR_GRAY ? "gray"
                            : s->pre.color == MQ_COLOR_BGR ? "bgr" : "rgb", want_c,
                            want_c == 1 ? "" : "s", a, c, nhwc ? "nhwc" : "nchw");
    if (s->pre.width && ((w >= 0 && w != s->pre.width) || (h >= 0 && h != s->pre.height)))
        return mq_error_set(err, "--image-size %" PRId64 "x%" PRId64 " does not match the "
                            "model's input %s (%s: width %" PRId64 ", height %" PRId64 ")",
                            s->pre.width, s->pre.height, a, nhwc ? "nhwc" : "nchw", w, h);
    if (w < 0)
        w = s->pre.width;
    if (h < 0)
        h = s->pre.height;
    if (w <= 0 || h <= 0)
        return mq_error_set(err, "the model's input %s leaves the image size free: give "
                            "--image-size WIDTHxHEIGHT", a);
    s->out_w = (int)w;
    s->out_h = (int)h;
    s->channels = want_c;
    s->nhwc = nhwc;
    s->rank = d->rank;
    if (lead)
        s->dims[0] = 1;
    int64_t *o = s->dims + lead;
    o[0] = nhwc ? h : c < 0 ? want_c : c;
    o[1] = nhwc ? w : h;
    o[2] = nhwc ? want_c : w;
    s->n_samples = s->n_files;
    return MQ_OK;
}

static int bind_audio(struct mq_user_samples *s, struct mq_error *err)
{
    const struct declared *d = &s->inputs[s->feed];
    char a[300];
    describe(d, a, sizeof a);
    if (d->rank < 1)
        return mq_error_set(err, "WAV frames feed an input of rank 1 or more ([..., samples]), "
                            "but the model's input is %s", a);
    for (int i = 0; i + 1 < d->rank; i++)
        if (d->dims[i] > 1)
            return mq_error_set(err, "the model's input %s has %" PRId64 " in dimension %d: "
                                "WAV frames are fed one at a time, with every dimension but "
                                "the last 1", a, d->dims[i], i);
    int64_t t = d->dims[d->rank - 1];
    if (s->pre.frame && t >= 0 && t != s->pre.frame)
        return mq_error_set(err, "--frame %" PRId64 " does not match the model's input %s",
                            s->pre.frame, a);
    s->frame = t >= 0 ? t : s->pre.frame;
    if (s->frame <= 0)
        return mq_error_set(err, "the model's input %s leaves its length free: give --frame N",
                            a);
    s->hop = s->pre.hop ? s->pre.hop : s->frame;
    s->rank = d->rank;
    for (int i = 0; i + 1 < d->rank; i++)
        s->dims[i] = 1;
    s->dims[d->rank - 1] = s->frame;
    /* Frames per file, from the headers. */
    int64_t cap = 1024, n = 0;
    s->sample_file = malloc(sizeof *s->sample_file * (size_t)cap);
    s->sample_frame = malloc(sizeof *s->sample_frame * (size_t)cap);
    for (int f = 0; f < s->n_files; f++) {
        struct mq_wav_info info;
        if (mq_wav_probe_file(s->files[f], &info, err))
            return MQ_ERR;
        if (!s->pre.mono && info.channels != 1)
            return mq_error_set(err, "%s: %d channels: give --mono to average them", s->files[f],
                                info.channels);
        int64_t len = mq_wav_resampled_length(info.frames, info.sample_rate,
                                              s->pre.sample_rate);
        int64_t frames = len >= s->frame ? 1 + (len - s->frame) / s->hop : 0;
        if (s->pre.pad_zero && (len < s->frame || (len - s->frame) % s->hop))
            frames++;
        for (int64_t k = 0; k < frames; k++) {
            if (!s->sample_file || !s->sample_frame)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            if (n == cap) {
                cap *= 2;
                int *sf = realloc(s->sample_file, sizeof *sf * (size_t)cap);
                if (sf)
                    s->sample_file = sf;
                int64_t *sk = realloc(s->sample_frame, sizeof *sk * (size_t)cap);
                if (sk)
                    s->sample_frame = sk;
                if (!sf || !sk)
                    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            }
            s->sample_file[n] = f;
            s->sample_frame[n++] = k;
        }
    }
    s->n_samples = n;
    s->names = calloc(n > 0 ? (size_t)n : 1, sizeof *s->names);
    if (!s->names)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        size_t len = strlen(s->files[s->sample_file[i]]) + 40;
        if (!(s->names[i] = malloc(len)))
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        snprintf(s->names[i], len, "%s[frame %" PRId64 "]", s->files[s->sample_file[i]],
                 s->sample_frame[i]);
    }
    if (n == 0)
        return mq_error_set(err, "the WAV files hold no frame of %" PRId64 " samples (give "
                            "--pad zero to pad a short file)", s->frame);
    return MQ_OK;
}

int mq_user_samples_open(enum mq_user_kind kind, char *const *files, int n_files,
                         const Onnx__ValueInfoProto *const *inputs, int n_inputs,
                         const struct mq_preprocess *pre, struct mq_user_samples **out,
                         struct mq_error *err)
{
    *out = NULL;
    struct mq_user_samples *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->cache.file = -1;
    s->kind = kind;
    s->pre = *pre;
    s->n_inputs = n_inputs;
    s->inputs = calloc((size_t)n_inputs + 1, sizeof *s->inputs);
    s->fill = calloc((size_t)n_inputs + 1, sizeof *s->fill);
    s->carried_from = calloc((size_t)n_inputs + 1, sizeof *s->carried_from);
    s->files = calloc((size_t)n_files + 1, sizeof *s->files);
    int rc = s->inputs && s->fill && s->carried_from && s->files ? MQ_OK
                                                : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int f = 0; rc == MQ_OK && f < n_files; f++) {
        if (!(s->files[f] = strdup(files[f])))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        s->n_files = f + 1;
    }
    for (int k = 0; rc == MQ_OK && k < n_inputs; k++)
        if (declared_from(&s->inputs[k], inputs[k]))
            rc = mq_error_set(err, "graph input '%s' has rank over %d", mq_str(inputs[k]->name),
                              MQ_MAX_RANK);
    if (rc == MQ_OK)
        rc = bind_inputs(s, err);
    if (rc == MQ_OK)
        rc = kind == MQ_USER_IMAGES ? bind_image(s, err) : bind_audio(s, err);
    if (rc) {
        mq_user_samples_free(s);
        return rc;
    }
    *out = s;
    return MQ_OK;
}

void mq_user_samples_free(struct mq_user_samples *s)
{
    if (!s)
        return;
    for (int f = 0; s->files && f < s->n_files; f++)
        free(s->files[f]);
    for (int64_t i = 0; s->names && i < s->n_samples; i++)
        free(s->names[i]);
    free(s->names);
    free(s->files);
    free(s->inputs);
    free(s->fill);
    free(s->carried_from);
    free(s->sample_file);
    free(s->sample_frame);
    free(s->cache.samples);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int64_t mq_user_samples_count(const struct mq_user_samples *s) { return s->n_samples; }

const char *mq_user_samples_carried_from(const struct mq_user_samples *s, int k)
{
    return k >= 0 && k < s->n_inputs ? s->carried_from[k] : NULL;
}

int mq_user_samples_starts_stream(const struct mq_user_samples *s, int64_t i)
{
    return s->kind != MQ_USER_AUDIO || s->sample_frame[i] == 0;
}

const char *mq_user_samples_name(const struct mq_user_samples *s, int64_t i)
{
    if (s->kind == MQ_USER_AUDIO)
        return s->names[i];
    return s->files[i];
}

/* ---- loading ---------------------------------------------------------------------------- */

static int fill_input(const struct mq_user_samples *s, int k, struct mq_tensor *t,
                      struct mq_error *err)
{
    const struct declared *d = &s->inputs[k];
    if (mq_tensor_alloc(t, d->dtype, d->rank, d->dims, d->name, err))
        return MQ_ERR;
    double v = s->fill[k];
    for (int64_t i = 0; i < t->count; i++) {
        switch (d->dtype) {
        case MQ_DTYPE_FLOAT: ((float *)t->data)[i] = (float)v; break;
        case MQ_DTYPE_DOUBLE: ((double *)t->data)[i] = v; break;
        case MQ_DTYPE_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
        case MQ_DTYPE_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
        case MQ_DTYPE_BOOL:
        case MQ_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
        default:
            return mq_error_set(err, "--fill %s: element type %s cannot be filled", d->name,
                                mq_dtype_name(d->dtype));
        }
    }
    return MQ_OK;
}

/* The decoded samples of file f, from the one-entry cache or decoded now. */
static int audio_acquire(struct mq_user_samples *s, int f, struct decoded_audio *got,
                         struct mq_error *err)
{
    pthread_mutex_lock(&s->lock);
    if (s->cache.file == f) {
        s->cache.users++;
        *got = s->cache;
        pthread_mutex_unlock(&s->lock);
        return MQ_OK;
    }
    pthread_mutex_unlock(&s->lock);
    int channels;
    memset(got, 0, sizeof *got);
    got->file = f;
    if (mq_wav_decode_file(s->files[f], s->pre.mono, s->pre.sample_rate, &got->samples,
                           &got->length, &channels, err))
        return MQ_ERR;
    pthread_mutex_lock(&s->lock);
    if (s->cache.users == 0) {
        free(s->cache.samples);
        s->cache = *got;
        s->cache.users = 1;
        got->users = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return MQ_OK;
}

static void audio_release(struct mq_user_samples *s, struct decoded_audio *got)
{
    pthread_mutex_lock(&s->lock);
    int cached = got->users && s->cache.samples == got->samples;
    if (cached)
        s->cache.users--;
    pthread_mutex_unlock(&s->lock);
    if (!cached)
        free(got->samples);
}

int mq_user_samples_load(struct mq_user_samples *s, int64_t i, struct mq_tensor *inputs,
                         struct mq_error *err)
{
    for (int k = 0; k < s->n_inputs; k++)
        memset(&inputs[k], 0, sizeof inputs[k]);
    if (i < 0 || i >= s->n_samples)
        return mq_error_set(err, "no sample %" PRId64, i);
    int rc = MQ_OK;
    for (int k = 0; rc == MQ_OK && k < s->n_inputs; k++)
        if (k != s->feed)
            rc = fill_input(s, k, &inputs[k], err);
    struct mq_tensor *t = &inputs[s->feed];
    if (rc == MQ_OK)
        rc = mq_tensor_alloc_uninit(t, MQ_DTYPE_FLOAT, s->rank, s->dims, s->inputs[s->feed].name,
                                    err);
    if (rc == MQ_OK && s->kind == MQ_USER_IMAGES) {
        struct mq_image image;
        rc = mq_image_decode_file(s->files[i], &image, err);
        if (rc == MQ_OK) {
            rc = mq_image_preprocess(&image, &s->pre, s->out_w, s->out_h, s->channels, s->nhwc,
                                     t->data, err);
            if (rc)
                mq_error_prefix(err, "%s: ", s->files[i]);
        }
        mq_image_free(&image);
    } else if (rc == MQ_OK) {
        struct decoded_audio a;
        rc = audio_acquire(s, s->sample_file[i], &a, err);
        if (rc == MQ_OK) {
            int64_t start = s->sample_frame[i] * s->hop;
            float *dst = t->data;
            for (int64_t j = 0; j < s->frame; j++)
                dst[j] = start + j < a.length ? a.samples[start + j] : 0.0f;
            audio_release(s, &a);
        }
    }
    if (rc)
        for (int k = 0; k < s->n_inputs; k++)
            mq_tensor_free(&inputs[k]);
    return rc;
}
