/*
 * Calibration samples on disk: finding test_data_set folders, .npy/.npz files, and binding them
 * to graph inputs (see reader.h).
 */
#include "calib/reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/folder.h"
#include "calib/source_user.h"
#include "model/npy.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"

/* What the model declares for one graph input. */
struct graph_input {
    char *name;
    int dtype;                     /* 0: not declared */
    int rank;                      /* -1: not declared */
    int64_t dims[MQ_MAX_RANK];     /* -1: free (symbolic or unknown) */
    char *params[MQ_MAX_RANK];     /* the symbolic name, or NULL */
};

struct sample {
    char *path;                    /* folder or archive */
    char **files;                  /* folders: per graph input, the file that feeds it */
    struct mq_npz npz;             /* .npz layout */
    int *members;                  /* .npz layout: per graph input, its member */
};

struct mq_calib_source {
    enum mq_calib_layout layout;
    char *dir;
    int n_inputs;
    struct graph_input *inputs;
    int64_t n_samples;
    struct sample *samples;        /* all layouts but stacked */
    /* Stacked layout: per graph input, its file and header. */
    char **stacked_paths;
    struct mq_npy_header *stacked_headers;
    char **stacked_names;          /* per sample, for messages */
    struct mq_user_samples *user;  /* images and WAV files */
    /* Sharding: public sample i is underlying sample shard_index + i * shard_count. */
    int64_t shard_index, shard_count, n_public;
    /* Files beside the samples that are not samples (labels, stray files): not read. */
    int64_t ignored;
    char *ignored_first;
};

/* Symbolic dimensions bound so far in one sample: one name takes one value. */
struct bindings {
    int n;
    const char **param;
    int64_t *value;
    const char **input;
};

/* A tensor's description as a file gives it. */
struct found {
    int dtype;
    int rank;
    int64_t dims[MQ_MAX_RANK];
};

const char *mq_calib_layout_name(enum mq_calib_layout layout)
{
    switch (layout) {
    case MQ_CALIB_LAYOUT_PB_FOLDERS: return "sample folders of input_K.pb tensors";
    case MQ_CALIB_LAYOUT_NPY_FOLDERS: return "sample folders of <input>.npy arrays";
    case MQ_CALIB_LAYOUT_NPZ: return ".npz archives, one per sample";
    case MQ_CALIB_LAYOUT_NPY_STACKED: return "<input>.npy arrays stacked along the first axis";
    case MQ_CALIB_LAYOUT_IMAGES: return "image files (JPEG, PNG)";
    case MQ_CALIB_LAYOUT_AUDIO: return "WAV files cut into frames";
    }
    return "unknown layout";
}

/* ---- describing shapes ----------------------------------------------------------------- */

static void describe_declared(const struct graph_input *in, char *buf, size_t size)
{
    const char *type = in->dtype ? mq_dtype_name(in->dtype) : "any type";
    if (in->rank < 0) {
        snprintf(buf, size, "%s, any shape", type);
        return;
    }
    size_t n = (size_t)snprintf(buf, size, "%s [", type);
    for (int i = 0; i < in->rank && n < size; i++) {
        if (in->dims[i] >= 0)
            n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, i ? "," : "", in->dims[i]);
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "",
                                  in->params[i] ? in->params[i] : "?");
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static void describe_found(const struct found *f, char *buf, size_t size)
{
    char shape[256];
    snprintf(buf, size, "%s %s", mq_dtype_name(f->dtype),
             mq_shape_format(f->rank, f->dims, shape, sizeof shape));
}

/* "'a' float32 [1,3], 'b' int64 []" for messages about inputs that match nothing. */
static void describe_inputs(const struct mq_calib_source *src, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < src->n_inputs && n < size; i++) {
        char d[300];
        describe_declared(&src->inputs[i], d, sizeof d);
        if (i == 8) {
            snprintf(buf + n, size - n, ", ...");
            return;
        }
        n += (size_t)snprintf(buf + n, size - n, "%s'%s' %s", i ? ", " : "",
                              src->inputs[i].name, d);
    }
}

static int find_input(const struct mq_calib_source *src, const char *name)
{
    for (int i = 0; i < src->n_inputs; i++)
        if (strcmp(src->inputs[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- checking one tensor against its graph input ---------------------------------------- */

static int check_found(const struct mq_calib_source *src, const char *file, int index,
                       const struct found *f, struct bindings *b, struct mq_error *err)
{
    const struct graph_input *in = &src->inputs[index];
    char want[400], have[300];
    describe_declared(in, want, sizeof want);
    describe_found(f, have, sizeof have);
    const char *hint = "";
    if (src->layout == MQ_CALIB_LAYOUT_NPY_STACKED)
        hint = " (a stacked .npy holds the samples along its first axis, so its rank is one "
               "more than the input's)";
    if (in->dtype && f->dtype != in->dtype &&
        !(f->dtype == MQ_DTYPE_UINT16 && in->dtype == MQ_DTYPE_BFLOAT16))
        return mq_error_set(err, "%s: input '%s' has element type %s but the model expects %s "
                            "(model: %s; file: %s)", file, in->name, mq_dtype_name(f->dtype),
                            mq_dtype_name(in->dtype), want, have);
    if (in->rank < 0)
        return MQ_OK;
    if (f->rank != in->rank)
        return mq_error_set(err, "%s: input '%s' has rank %d but the model expects rank %d "
                            "(model: %s; file: %s)%s", file, in->name, f->rank, in->rank, want,
                            have, hint);
    for (int d = 0; d < in->rank; d++) {
        if (in->dims[d] >= 0 && f->dims[d] != in->dims[d])
            return mq_error_set(err, "%s: input '%s' has %" PRId64 " in dimension %d but the "
                                "model fixes it at %" PRId64 " (model: %s; file: %s)", file,
                                in->name, f->dims[d], d, in->dims[d], want, have);
        if (!in->params[d] || !b)
            continue;
        int k = 0;
        while (k < b->n && strcmp(b->param[k], in->params[d]) != 0)
            k++;
        if (k == b->n) {
            b->param[k] = in->params[d];
            b->value[k] = f->dims[d];
            b->input[k] = in->name;
            b->n++;
        } else if (b->value[k] != f->dims[d]) {
            return mq_error_set(err, "%s: input '%s' has %" PRId64 " in dimension %d ('%s') but "
                                "input '%s' of the same sample gives '%s' = %" PRId64
                                " (model: %s; file: %s)", file, in->name, f->dims[d], d,
                                in->params[d], b->input[k], in->params[d], b->value[k], want,
                                have);
        }
    }
    return MQ_OK;
}

static int bindings_init(struct bindings *b, int n_inputs)
{
    size_t cap = (size_t)(n_inputs > 0 ? n_inputs : 1) * MQ_MAX_RANK;
    b->n = 0;
    b->param = calloc(cap, sizeof *b->param);
    b->value = calloc(cap, sizeof *b->value);
    b->input = calloc(cap, sizeof *b->input);
    return b->param && b->value && b->input ? MQ_OK : MQ_ERR_MEMORY;
}

static void bindings_free(struct bindings *b)
{
    free(b->param);
    free(b->value);
    free(b->input);
}

static void found_from_tensor(struct found *f, const struct mq_tensor *t)
{
    f->dtype = t->dtype;
    f->rank = t->rank;
    memcpy(f->dims, t->dims, sizeof f->dims);
}

static void found_from_header(struct found *f, const struct mq_npy_header *h)
{
    f->dtype = h->dtype;
    f->rank = h->rank;
    memcpy(f->dims, h->dims, sizeof f->dims);
}

/* ---- graph inputs ---------------------------------------------------------------------- */

static int read_inputs(struct mq_calib_source *src, const Onnx__ValueInfoProto *const *inputs,
                       int n, struct mq_error *err)
{
    src->inputs = calloc(n > 0 ? (size_t)n : 1, sizeof *src->inputs);
    if (!src->inputs)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) {
        struct graph_input *in = &src->inputs[i];
        src->n_inputs = i + 1;
        in->rank = -1;
        in->name = strdup(mq_str(inputs[i]->name));
        if (!in->name)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        const Onnx__TypeProto *type = inputs[i]->type;
        if (!type || type->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
            continue;
        if (type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !type->tensor_type)
            return mq_error_set(err, "graph input '%s' is not a tensor: calibration feeds "
                                "tensors only", in->name);
        const Onnx__TypeProto__Tensor *tt = type->tensor_type;
        if (tt->has_elem_type)
            in->dtype = tt->elem_type;
        if (!tt->shape)
            continue;
        if (tt->shape->n_dim > MQ_MAX_RANK)
            return mq_error_set(err, "graph input '%s' has rank %zu, more than the %d supported",
                                in->name, tt->shape->n_dim, MQ_MAX_RANK);
        in->rank = (int)tt->shape->n_dim;
        for (int d = 0; d < in->rank; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            in->dims[d] = -1;
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                dim->dim_value >= 0) {
                in->dims[d] = dim->dim_value;
            } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                       dim->dim_param && *dim->dim_param) {
                in->params[d] = strdup(dim->dim_param);
                if (!in->params[d])
                    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            }
        }
    }
    return MQ_OK;
}

/* ---- sample folders of .pb files ------------------------------------------------------- */

/* K of "input_K.pb", -1 when the name carries no position. */
static int pb_position(const char *file)
{
    const char *p = file + 6;
    int k = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 9) {
        k = k * 10 + (*p++ - '0');
        digits++;
    }
    return digits && strcmp(p, ".pb") == 0 ? k : -1;
}

static int missing_error(const struct mq_calib_source *src, const char *where, int index,
                         const char *expected, struct mq_error *err)
{
    char want[400];
    describe_declared(&src->inputs[index], want, sizeof want);
    return mq_error_set(err, "%s: no data for graph input '%s' (%s): expected %s", where,
                        src->inputs[index].name, want, expected);
}

static int extra_error(const struct mq_calib_source *src, const char *file, const char *name,
                       const struct found *f, const char *why, struct mq_error *err)
{
    char have[300], inputs[1024];
    describe_found(f, have, sizeof have);
    describe_inputs(src, inputs, sizeof inputs);
    return mq_error_set(err, "%s: '%s' (%s) %s; the model takes %s", file, name, have, why,
                        inputs);
}

static int open_pb_sample(struct mq_calib_source *src, struct sample *s, struct folder *f,
                          struct mq_error *err)
{
    int n = f->pb_inputs.n;
    struct found *found = calloc((size_t)n, sizeof *found);
    char **paths = calloc((size_t)n, sizeof *paths);
    char **names = calloc((size_t)n, sizeof *names);
    int *feeds = malloc((size_t)n * sizeof *feeds);
    struct bindings b = {0};
    int rc = !found || !paths || !names || !feeds || bindings_init(&b, src->n_inputs)
                 ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory")
                 : MQ_OK;
    for (int i = 0; feeds && i < n; i++)
        feeds[i] = -1;
    for (int i = 0; rc == MQ_OK && i < n; i++) {
        paths[i] = mq_path_join(s->path, f->pb_inputs.names[i]);
        /* the type and shape from the fields before the data: the pass reads the data */
        struct mq_tensor_pb_info info;
        if (!paths[i])
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        else
            rc = mq_tensor_describe_pb(paths[i], &info, &names[i], err);
        if (rc == MQ_OK) {
            found[i].dtype = info.dtype;
            found[i].rank = info.rank;
            memcpy(found[i].dims, info.dims, sizeof found[i].dims);
        }
    }
    /* By name first, then by position for the files whose name feeds nothing. */
    for (int i = 0; rc == MQ_OK && i < n; i++) {
        int k = names[i] ? find_input(src, names[i]) : -1;
        if (k < 0)
            continue;
        if (s->files[k])
            rc = mq_error_set(err, "%s: both %s and %s hold graph input '%s'", s->path,
                              s->files[k], paths[i], src->inputs[k].name);
        else
            s->files[k] = paths[i], feeds[i] = k;
    }
    for (int i = 0; rc == MQ_OK && i < n; i++) {
        if (feeds[i] >= 0)
            continue;
        int k = pb_position(f->pb_inputs.names[i]);
        const char *name = names[i] && *names[i] ? names[i] : "(unnamed)";
        if (k < 0 || k >= src->n_inputs)
            rc = extra_error(src, paths[i], name, &found[i],
                             "matches no graph input by name or position", err);
        else if (s->files[k])
            rc = extra_error(src, paths[i], name, &found[i],
                             "matches no graph input by name, and its position is taken", err);
        else
            s->files[k] = paths[i], feeds[i] = k;
    }
    for (int k = 0; rc == MQ_OK && k < src->n_inputs; k++) {
        if (!s->files[k]) {
            char expected[300];
            snprintf(expected, sizeof expected, "input_%d.pb or a .pb tensor named '%s'", k,
                     src->inputs[k].name);
            rc = missing_error(src, s->path, k, expected, err);
        }
    }
    for (int i = 0; rc == MQ_OK && i < n; i++)
        rc = check_found(src, paths[i], feeds[i], &found[i], &b, err);
    for (int i = 0; i < n; i++) {
        if (paths && (!feeds || feeds[i] < 0 || rc))
            free(paths[i]);
        if (names)
            free(names[i]);
    }
    if (rc)
        memset(s->files, 0, (size_t)src->n_inputs * sizeof *s->files);
    bindings_free(&b);
    free(found);
    free(paths);
    free(names);
    free(feeds);
    return rc;
}

/* ---- sample folders of .npy files ------------------------------------------------------ */

static int open_npy_sample(struct mq_calib_source *src, struct sample *s, struct folder *f,
                           struct mq_error *err)
{
    struct bindings b;
    if (bindings_init(&b, src->n_inputs)) {
        bindings_free(&b);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    int rc = MQ_OK;
    for (int i = 0; rc == MQ_OK && i < f->npy.n; i++) {
        char *path = mq_path_join(s->path, f->npy.names[i]);
        if (!path) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            break;
        }
        struct mq_byte_source bs;
        struct mq_npy_header h;
        struct found fd;
        rc = mq_byte_source_file(&bs, path, err);
        if (rc == MQ_OK)
            rc = mq_npy_read_header(&bs, 0, bs.size, &h, err);
        if (rc == MQ_OK) {
            found_from_header(&fd, &h);
            char *key = strndup(f->npy.names[i], strlen(f->npy.names[i]) - 4);
            int k = key ? find_input(src, key) : -1;
            if (!key)
                rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            else if (k < 0)
                rc = extra_error(src, path, key, &fd, "matches no graph input", err);
            else
                rc = check_found(src, path, k, &fd, &b, err);
            free(key);
            if (rc == MQ_OK) {
                s->files[k] = path;
                path = NULL;
            }
        }
        free(path);
    }
    for (int k = 0; rc == MQ_OK && k < src->n_inputs; k++) {
        if (!s->files[k]) {
            char expected[300];
            snprintf(expected, sizeof expected, "%s.npy", src->inputs[k].name);
            rc = missing_error(src, s->path, k, expected, err);
        }
    }
    bindings_free(&b);
    return rc;
}

static int open_folder_sample(struct mq_calib_source *src, struct sample *s, int first,
                              struct mq_error *err)
{
    struct folder f;
    if (mq_calib_folder_list(s->path, &f, err))
        return MQ_ERR;
    int rc;
    s->files = calloc(src->n_inputs > 0 ? (size_t)src->n_inputs : 1, sizeof *s->files);
    if (!s->files) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    } else if (f.pb_inputs.n && f.npy.n) {
        rc = mq_error_set(err, "%s: holds both input_K.pb and .npy files; a sample folder "
                          "holds one kind", s->path);
    } else if (!f.pb_inputs.n && !f.npy.n && src->n_inputs > 0) {
        /* (a model without inputs takes an empty folder: nothing to read) */
        rc = mq_error_set(err, "%s: holds no input_K.pb or <input>.npy files", s->path);
    } else {
        enum mq_calib_layout layout = f.pb_inputs.n ? MQ_CALIB_LAYOUT_PB_FOLDERS
                                                    : MQ_CALIB_LAYOUT_NPY_FOLDERS;
        if (first)
            src->layout = layout;
        if (layout != src->layout)
            rc = mq_error_set(err, "%s: holds %s files but the sample folders before it hold %s",
                              s->path, f.npy.n ? ".npy" : ".pb",
                              f.npy.n ? ".pb" : ".npy");
        else if (layout == MQ_CALIB_LAYOUT_PB_FOLDERS)
            rc = open_pb_sample(src, s, &f, err);
        else
            rc = open_npy_sample(src, s, &f, err);
    }
    mq_calib_folder_free(&f);
    return rc;
}

/* ---- .npz archives --------------------------------------------------------------------- */

static int open_npz_sample(struct mq_calib_source *src, struct sample *s, struct mq_error *err)
{
    struct mq_byte_source bs;
    if (mq_byte_source_file(&bs, s->path, err) || mq_npz_open(&bs, &s->npz, err))
        return MQ_ERR;
    s->members = malloc((size_t)(src->n_inputs > 0 ? src->n_inputs : 1) * sizeof *s->members);
    struct bindings b = {0};
    int rc = !s->members || bindings_init(&b, src->n_inputs)
                 ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory")
                 : MQ_OK;
    if (rc) {
        bindings_free(&b);
        return rc;
    }
    for (int k = 0; k < src->n_inputs; k++)
        s->members[k] = -1;
    for (int i = 0; rc == MQ_OK && i < s->npz.n; i++) {
        struct found fd;
        found_from_header(&fd, &s->npz.members[i].header);
        int k = find_input(src, s->npz.members[i].name);
        char label[600];
        snprintf(label, sizeof label, "%s, member '%s.npy'", s->path, s->npz.members[i].name);
        if (k < 0) {
            rc = extra_error(src, label, s->npz.members[i].name, &fd, "matches no graph input",
                             err);
        } else {
            s->members[k] = i;
            rc = check_found(src, label, k, &fd, &b, err);
        }
    }
    for (int k = 0; rc == MQ_OK && k < src->n_inputs; k++) {
        if (s->members[k] < 0) {
            char expected[300];
            snprintf(expected, sizeof expected, "a member '%s' (numpy.savez(file, **{'%s': "
                     "array}))", src->inputs[k].name, src->inputs[k].name);
            rc = missing_error(src, s->path, k, expected, err);
        }
    }
    bindings_free(&b);
    return rc;
}

/* ---- stacked .npy files ---------------------------------------------------------------- */

static int open_stacked(struct mq_calib_source *src, const struct folder *f, int64_t limit,
                        struct mq_error *err)
{
    int n = src->n_inputs;
    src->stacked_paths = calloc(n > 0 ? (size_t)n : 1, sizeof *src->stacked_paths);
    src->stacked_headers = calloc(n > 0 ? (size_t)n : 1, sizeof *src->stacked_headers);
    if (!src->stacked_paths || !src->stacked_headers)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int64_t count = -1;
    const char *count_from = NULL;
    for (int i = 0; i < f->npy.n; i++) {
        char *path = mq_path_join(src->dir, f->npy.names[i]);
        char *key = strndup(f->npy.names[i], strlen(f->npy.names[i]) - 4);
        struct mq_byte_source bs;
        struct mq_npy_header h;
        if (!path || !key) {
            free(path);
            free(key);
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        }
        int rc = mq_byte_source_file(&bs, path, err);
        if (rc == MQ_OK)
            rc = mq_npy_read_header(&bs, 0, bs.size, &h, err);
        int k = find_input(src, key);
        if (rc == MQ_OK && k < 0) {
            struct found fd;
            found_from_header(&fd, &h);
            rc = extra_error(src, path, key, &fd, "matches no graph input", err);
        }
        free(key);
        if (rc == MQ_OK && h.rank < 1)
            rc = mq_error_set(err, "%s: a scalar has no sample axis; stacked .npy files hold "
                              "the samples along their first axis", path);
        if (rc == MQ_OK && h.fortran_order && h.rank > 1)
            rc = mq_error_set(err, "%s: Fortran-ordered arrays cannot be read one sample at a "
                              "time; save it in C order (numpy.ascontiguousarray)", path);
        if (rc == MQ_OK && count >= 0 && h.dims[0] != count)
            rc = mq_error_set(err, "%s holds %" PRId64 " samples but %s holds %" PRId64
                              " (the first axis is the sample axis)", path, h.dims[0],
                              count_from, count);
        if (rc) {
            free(path);
            return rc;
        }
        src->stacked_paths[k] = path;
        src->stacked_headers[k] = h;
        if (count < 0) {
            count = h.dims[0];
            count_from = path;
        }
    }
    for (int k = 0; k < n; k++) {
        if (!src->stacked_paths[k]) {
            char expected[300];
            snprintf(expected, sizeof expected, "%s.npy", src->inputs[k].name);
            return missing_error(src, src->dir, k, expected, err);
        }
    }
    /* Every sample has the same shape: one check covers them all. */
    struct bindings b;
    int rc = bindings_init(&b, n) ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory") : MQ_OK;
    for (int k = 0; rc == MQ_OK && k < n; k++) {
        const struct mq_npy_header *h = &src->stacked_headers[k];
        struct found fd = {h->dtype, h->rank - 1, {0}};
        memcpy(fd.dims, h->dims + 1, sizeof(int64_t) * (size_t)(h->rank - 1));
        rc = check_found(src, src->stacked_paths[k], k, &fd, &b, err);
    }
    bindings_free(&b);
    if (rc)
        return rc;
    src->n_samples = count < 0 ? 0 : count;
    if (limit > 0 && src->n_samples > limit)
        src->n_samples = limit;
    src->stacked_names = calloc(src->n_samples > 0 ? (size_t)src->n_samples : 1,
                                sizeof *src->stacked_names);
    if (!src->stacked_names)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int64_t i = 0; i < src->n_samples; i++) {
        size_t len = strlen(src->stacked_paths[0]) + 24;
        src->stacked_names[i] = malloc(len);
        if (!src->stacked_names[i])
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        snprintf(src->stacked_names[i], len, "%s[%" PRId64 "]", src->stacked_paths[0], i);
    }
    return MQ_OK;
}

/* ---- the source ------------------------------------------------------------------------ */

static int open_samples(struct mq_calib_source *src, const struct listing *entries,
                        int64_t limit, struct mq_error *err)
{
    int64_t n = entries->n;
    if (limit > 0 && n > limit)
        n = limit;
    src->samples = calloc(n > 0 ? (size_t)n : 1, sizeof *src->samples);
    if (!src->samples)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        struct sample *s = &src->samples[i];
        src->n_samples = i + 1;
        s->path = mq_path_join(src->dir, entries->names[i]);
        if (!s->path)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        int rc = src->layout == MQ_CALIB_LAYOUT_NPZ ? open_npz_sample(src, s, err)
                                                    : open_folder_sample(src, s, i == 0, err);
        if (rc)
            return rc;
    }
    return MQ_OK;
}

/* DIR holds input_K.pb files itself: it is the one sample. */
static int open_one_folder(struct mq_calib_source *src, struct mq_error *err)
{
    src->samples = calloc(1, sizeof *src->samples);
    if (!src->samples || !(src->samples[0].path = strdup(src->dir)))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    src->n_samples = 1;
    return open_folder_sample(src, &src->samples[0], 1, err);
}

/* Loose .npy files beside another layout: those named after a graph input are samples (a
   stacked layout), the others (labels.npy) are labels. */
static int count_input_npy(const struct mq_calib_source *src, const struct listing *npy)
{
    int n = 0;
    for (int i = 0; i < npy->n; i++) {
        char *key = strndup(npy->names[i], strlen(npy->names[i]) - 4);
        n += key && find_input(src, key) >= 0;
        free(key);
    }
    return n;
}

static int note_ignored(struct mq_calib_source *src, const struct listing *l)
{
    if (l->n && !src->ignored_first && !(src->ignored_first = strdup(l->names[0])))
        return MQ_ERR_MEMORY;
    src->ignored += l->n;
    return MQ_OK;
}

static int open_user_files(struct mq_calib_source *src, enum mq_user_kind kind,
                           const struct listing *files, const Onnx__ValueInfoProto *const *inputs,
                           int n_inputs, const struct mq_preprocess *pre, struct mq_error *err)
{
    if (!pre || !pre->any)
        return mq_error_set(err, "%s: holds %s: declare how they become the model's input "
                            "(--preprocess FILE, or --image-size, --resize, --color, --scale, "
                            "--mean, --std; for audio --sample-rate, --mono, --frame, --hop)",
                            src->dir, kind == MQ_USER_IMAGES ? "images" : "WAV files");
    char **paths = calloc((size_t)files->n + 1, sizeof *paths);
    int rc = paths ? MQ_OK : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; rc == MQ_OK && i < files->n; i++)
        if (!(paths[i] = mq_path_join(src->dir, files->names[i])))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK)
        rc = mq_user_samples_open(kind, paths, files->n, inputs, n_inputs, pre, &src->user, err);
    if (rc && rc != MQ_ERR_MEMORY)
        mq_error_prefix(err, "%s: ", src->dir);
    for (int i = 0; paths && i < files->n; i++)
        free(paths[i]);
    free(paths);
    if (rc == MQ_OK) {
        src->layout = kind == MQ_USER_IMAGES ? MQ_CALIB_LAYOUT_IMAGES : MQ_CALIB_LAYOUT_AUDIO;
        src->n_samples = mq_user_samples_count(src->user);
    }
    return rc;
}

int mq_calib_source_open_with(const char *dir, const Onnx__ValueInfoProto *const *inputs,
                              int n_inputs, const struct mq_calib_open_options *options,
                              struct mq_calib_source **out, struct mq_error *err)
{
    *out = NULL;
    int64_t limit = options ? options->limit : 0;
    int64_t shard_n = options && options->shard_count > 0 ? options->shard_count : 1;
    int64_t shard_k = options && options->shard_count > 0 ? options->shard_index : 0;
    if (shard_k < 0 || shard_k >= shard_n)
        return mq_error_code(err, MQ_ERR_USAGE, "shard %" PRId64 "/%" PRId64 ": the index runs "
                             "from 0 to %" PRId64, shard_k, shard_n, shard_n - 1);
    struct mq_calib_source *src = calloc(1, sizeof *src);
    if (!src || !(src->dir = strdup(dir))) {
        free(src);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    src->shard_index = shard_k;
    src->shard_count = shard_n;
    int rc = read_inputs(src, inputs, n_inputs, err);
    struct folder f;
    if (rc == MQ_OK)
        rc = mq_calib_folder_list(dir, &f, err);
    if (rc) {
        mq_calib_source_free(src);
        return rc;
    }
    int others = (f.dirs.n > 0) + (f.npz.n > 0) + (f.images.n > 0) + (f.wavs.n > 0);
    int input_npy = others ? count_input_npy(src, &f.npy) : f.npy.n;
    int kinds = others + (input_npy > 0);
    if (kinds > 1) {
        rc = mq_error_set(err, "%s: mixes calibration layouts (%d sample folders, %d .npz, %d "
                          ".npy named after graph inputs, %d images, %d WAV files): keep one",
                          dir, f.dirs.n, f.npz.n, input_npy, f.images.n, f.wavs.n);
    } else {
        /* Files that are no sample (labels.npy, boxes.txt, README) are counted, never read. */
        if (note_ignored(src, &f.other) || (others && note_ignored(src, &f.npy)))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        if (rc) {
        } else if (f.dirs.n) {
            rc = open_samples(src, &f.dirs, limit, err);
        } else if (f.npz.n) {
            src->layout = MQ_CALIB_LAYOUT_NPZ;
            rc = open_samples(src, &f.npz, limit, err);
        } else if (f.images.n) {
            rc = open_user_files(src, MQ_USER_IMAGES, &f.images, inputs, n_inputs,
                                 options ? options->preprocess : NULL, err);
        } else if (f.wavs.n) {
            rc = open_user_files(src, MQ_USER_AUDIO, &f.wavs, inputs, n_inputs,
                                 options ? options->preprocess : NULL, err);
        } else if (f.npy.n) {
            src->layout = MQ_CALIB_LAYOUT_NPY_STACKED;
            rc = open_stacked(src, &f, limit, err);
        } else if (f.pb_inputs.n) {
            rc = open_one_folder(src, err);
        } else {
            rc = mq_error_set(err, "%s: no calibration samples: expected test_data_set_N/input_K.pb "
                              "folders, folders of <input>.npy files, .npz archives, "
                              "<input>.npy files stacked along their first axis, images (JPEG, "
                              "PNG) or WAV files", dir);
        }
    }
    mq_calib_folder_free(&f);
    if (rc == MQ_OK && src->n_samples == 0)
        rc = mq_error_set(err, "%s: the stacked arrays hold no samples", dir);
    if (rc == MQ_OK && limit > 0 && src->n_samples > limit)
        src->n_samples = limit;
    src->n_public = src->n_samples > shard_k ? (src->n_samples - shard_k + shard_n - 1) / shard_n
                                             : 0;
    for (int k = 0; rc == MQ_OK && shard_n > 1 && k < n_inputs; k++)
        if (mq_calib_source_carried_from(src, k))
            rc = mq_error_code(err, MQ_ERR_USAGE, "--carry runs every frame after the one "
                               "before it: it cannot be split into shards");
    if (rc == MQ_OK && src->n_public == 0)
        rc = mq_error_set(err, "%s: shard %" PRId64 "/%" PRId64 " holds none of the %" PRId64
                          " samples", dir, shard_k, shard_n, src->n_samples);
    if (rc) {
        mq_calib_source_free(src);
        return rc;
    }
    *out = src;
    return MQ_OK;
}

int mq_calib_source_open(const char *dir, const Onnx__ValueInfoProto *const *inputs, int n_inputs,
                         int64_t limit, struct mq_calib_source **out, struct mq_error *err)
{
    struct mq_calib_open_options options = {limit, 0, 0, NULL};
    return mq_calib_source_open_with(dir, inputs, n_inputs, &options, out, err);
}

const char *mq_calib_source_carried_from(const struct mq_calib_source *src, int k)
{
    return src->user ? mq_user_samples_carried_from(src->user, k) : NULL;
}

int mq_calib_source_starts_stream(const struct mq_calib_source *src, int64_t i)
{
    return !src->user || i < 0 || i >= src->n_public ||
           mq_user_samples_starts_stream(src->user, src->shard_index + i * src->shard_count);
}

int64_t mq_calib_source_ignored(const struct mq_calib_source *src, const char **first)
{
    if (first)
        *first = src->ignored_first;
    return src->ignored;
}

void mq_calib_source_free(struct mq_calib_source *src)
{
    if (!src)
        return;
    for (int64_t i = 0; src->samples && i < src->n_samples; i++) {
        struct sample *s = &src->samples[i];
        for (int k = 0; s->files && k < src->n_inputs; k++)
            free(s->files[k]);
        free(s->files);
        mq_npz_close(&s->npz);
        free(s->members);
        free(s->path);
    }
    free(src->samples);
    for (int k = 0; src->stacked_paths && k < src->n_inputs; k++)
        free(src->stacked_paths[k]);
    free(src->stacked_paths);
    free(src->stacked_headers);
    for (int64_t i = 0; src->stacked_names && i < src->n_samples; i++)
        free(src->stacked_names[i]);
    free(src->stacked_names);
    for (int k = 0; src->inputs && k < src->n_inputs; k++) {
        free(src->inputs[k].name);
        for (int d = 0; d < MQ_MAX_RANK; d++)
            free(src->inputs[k].params[d]);
    }
    free(src->inputs);
    mq_user_samples_free(src->user);
    free(src->ignored_first);
    free(src->dir);
    free(src);
}

int64_t mq_calib_source_count(const struct mq_calib_source *src) { return src->n_public; }

/* The underlying sample of public index i (shards). */
static int64_t underlying(const struct mq_calib_source *src, int64_t i)
{
    return src->shard_index + i * src->shard_count;
}

enum mq_calib_layout mq_calib_source_layout(const struct mq_calib_source *src)
{
    return src->layout;
}

const char *mq_calib_source_sample_name(const struct mq_calib_source *src, int64_t i)
{
    if (i < 0 || i >= src->n_public)
        return src->dir;
    i = underlying(src, i);
    if (src->user)
        return mq_user_samples_name(src->user, i);
    if (src->layout == MQ_CALIB_LAYOUT_NPY_STACKED)
        return src->stacked_names[i];
    return src->samples[i].path;
}

int mq_calib_source_load(const struct mq_calib_source *src, int64_t i, struct mq_tensor *inputs,
                         struct mq_error *err)
{
    for (int k = 0; k < src->n_inputs; k++)
        memset(&inputs[k], 0, sizeof inputs[k]);
    if (i < 0 || i >= src->n_public)
        return mq_error_set(err, "%s: no sample %" PRId64, src->dir, i);
    i = underlying(src, i);
    if (src->user)
        return mq_user_samples_load(src->user, i, inputs, err);
    struct bindings b;
    if (bindings_init(&b, src->n_inputs)) {
        bindings_free(&b);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    const struct sample *s = src->samples ? &src->samples[i] : NULL;
    int rc = MQ_OK;
    for (int k = 0; rc == MQ_OK && k < src->n_inputs; k++) {
        char label[600];
        const char *what = label;
        switch (src->layout) {
        case MQ_CALIB_LAYOUT_PB_FOLDERS:
            what = s->files[k];
            rc = mq_tensor_read_pb(what, &inputs[k], NULL, err);
            break;
        case MQ_CALIB_LAYOUT_NPY_FOLDERS:
            what = s->files[k];
            rc = mq_npy_read(what, &inputs[k], err);
            break;
        case MQ_CALIB_LAYOUT_NPZ:
            snprintf(label, sizeof label, "%s, member '%s.npy'", s->path,
                     s->npz.members[s->members[k]].name);
            rc = mq_npz_load(&s->npz, s->members[k], &inputs[k], err);
            break;
        case MQ_CALIB_LAYOUT_NPY_STACKED: {
            struct mq_byte_source bs;
            what = src->stacked_names[i];
            rc = mq_byte_source_file(&bs, src->stacked_paths[k], err);
            /* The file may have changed since it was opened: its header must still agree. */
            struct mq_npy_header h;
            if (rc == MQ_OK)
                rc = mq_npy_read_header(&bs, 0, bs.size, &h, err);
            if (rc == MQ_OK && (h.dtype != src->stacked_headers[k].dtype ||
                                h.rank != src->stacked_headers[k].rank ||
                                memcmp(h.dims, src->stacked_headers[k].dims,
                                       sizeof h.dims) != 0 ||
                                h.data_offset != src->stacked_headers[k].data_offset))
                rc = mq_error_set(err, "%s: changed since calibration started",
                                  src->stacked_paths[k]);
            if (rc == MQ_OK)
                rc = mq_npy_load_slice(&bs, 0, &h, i, &inputs[k], err);
            break;
        }
        case MQ_CALIB_LAYOUT_IMAGES:
        case MQ_CALIB_LAYOUT_AUDIO:
            break; /* loaded by mq_user_samples_load above */
        }
        if (rc == MQ_OK) {
            struct found fd;
            /* Older writers store bfloat16 as uint16: the graph input says which it is. */
            mq_tensor_adopt_declared_bfloat16(&inputs[k], src->inputs[k].dtype);
            found_from_tensor(&fd, &inputs[k]);
            rc = check_found(src, what, k, &fd, &b, err);
        }
    }
    bindings_free(&b);
    if (rc)
        for (int k = 0; k < src->n_inputs; k++)
            mq_tensor_free(&inputs[k]);
    return rc;
}
