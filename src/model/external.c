/*
 * Tensors whose bytes live in a file beside the model (data_location = EXTERNAL): resolving,
 * checking and reading them (see external.h).
 */
#include "model/external.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "util/fileio.h"

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

/* A location is acceptable when it is relative and never climbs with "..". */
static int location_is_confined(const char *loc)
{
    if (!*loc || loc[0] == '/')
        return 0;
    const char *p = loc;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 1;
}

int mq_external_resolve(Onnx__TensorProto *t, const char *model_dir, struct mq_error *err)
{
    const char *name = mq_str(t->name);
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *k = mq_str(t->external_data[i]->key);
        const char *v = t->external_data[i]->value;
        if (strcmp(k, "location") == 0)
            location = v;
        else if (strcmp(k, "offset") == 0)
            offset_s = v;
        else if (strcmp(k, "length") == 0)
            length_s = v;
    }
    if (!model_dir)
        return mq_error_set(err, "tensor '%s': external data is not allowed here", name);
    if (!location)
        return mq_error_set(err, "tensor '%s': external data has no location", name);
    if (!location_is_confined(location))
        return mq_error_set(err, "tensor '%s': external data location '%s' is absolute or leaves "
                            "the model's folder; refused", name, location);
    uint64_t offset = 0, length = 0;
    if (offset_s && parse_u64(offset_s, &offset))
        return mq_error_set(err, "tensor '%s': external data offset '%s' is not a number", name,
                            offset_s);
    if (length_s && parse_u64(length_s, &length))
        return mq_error_set(err, "tensor '%s': external data length '%s' is not a number", name,
                            length_s);

    char *path = mq_path_join(model_dir, location);
    if (!path)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    /* Symlinks can still lead out: compare the real paths. */
    char real_dir[PATH_MAX], real_file[PATH_MAX];
    if (!realpath(model_dir, real_dir) || !realpath(path, real_file)) {
        int rc = mq_error_set(err, "tensor '%s': external data file '%s' not found: %s", name,
                              path, strerror(errno));
        free(path);
        return rc;
    }
    size_t dlen = strlen(real_dir);
    int inside = strncmp(real_file, real_dir, dlen) == 0 &&
                 (real_file[dlen] == '/' || (dlen == 1 && real_dir[0] == '/'));
    if (!inside) {
        int rc = mq_error_set(err, "tensor '%s': external data file '%s' resolves to '%s', outside "
                              "the model's folder; refused", name, location, real_file);
        free(path);
        return rc;
    }
    struct stat st;
    if (stat(real_file, &st) != 0 || !S_ISREG(st.st_mode)) {
        int rc = mq_error_set(err, "tensor '%s': external data '%s' is not a regular file", name,
                              path);
        free(path);
        return rc;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    if (offset > file_size) {
        int rc = mq_error_set(err, "tensor '%s': external data offset %" PRIu64 " is past the end "
                              "of '%s' (%" PRIu64 " bytes)", name, offset, path, file_size);
        free(path);
        return rc;
    }
    if (!length_s)
        length = file_size - offset;

    /* The length must agree with what the dims need, before anything is allocated. */
    int dtype = t->has_data_type ? t->data_type : 0;
    int64_t count = t->n_dims <= MQ_MAX_RANK ? mq_dims_count((int)t->n_dims, t->dims) : -1;
    size_t elem = mq_dtype_size(dtype);
    uint64_t need;
    if (count < 0) {
        free(path);
        return mq_error_set(err, "tensor '%s': dims are negative or overflow", name);
    }
    if (elem)
        need = mq_dtype_file_bytes(dtype, (uint64_t)count);
    else {
        free(path);
        return mq_error_set(err, "tensor '%s': element type %s cannot be stored externally",
                            name, mq_dtype_name(dtype));
    }
    if ((elem && (uint64_t)count > UINT64_MAX / elem) || length != need) {
        free(path);
        return mq_error_set(err, "tensor '%s': external data length %" PRIu64 " disagrees with "
                            "its dims, which need %" PRIu64 " bytes", name, length, need);
    }
    if (offset + length > file_size) {
        int rc = mq_error_set(err, "tensor '%s': external data needs bytes %" PRIu64 "..%" PRIu64
                              " of '%s', which has %" PRIu64, name, offset, offset + length, path,
                              file_size);
        free(path);
        return rc;
    }
    if (mq_memory_reserve(length, name, err)) {
        free(path);
        return MQ_ERR_MEMORY;
    }
    mq_memory_release(length); /* only a check: model bytes are not tensor buffers */
    uint8_t *bytes = malloc(length ? (size_t)length : 1);
    if (!bytes) {
        free(path);
        return mq_error_code(err, MQ_ERR_MEMORY, "tensor '%s': out of memory", name);
    }
    if (mq_file_read_range(real_file, offset, length, bytes, err)) {
        free(bytes);
        free(path);
        mq_error_prefix(err, "tensor '%s': ", name);
        return MQ_ERR;
    }
    free(path);
    if (t->has_raw_data)
        free(t->raw_data.data);
    t->raw_data.data = bytes;
    t->raw_data.len = (size_t)length;
    t->has_raw_data = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    t->has_data_location = 0;
    for (size_t i = 0; i < t->n_external_data; i++)
        onnx__string_string_entry_proto__free_unpacked(t->external_data[i], NULL);
    free(t->external_data);
    t->external_data = NULL;
    t->n_external_data = 0;
    return MQ_OK;
}
