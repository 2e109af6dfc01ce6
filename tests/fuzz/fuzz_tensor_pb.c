/*
 * libFuzzer target: a calibration or test-data file holding one TensorProto
 * (test_data_set_N/input_K.pb), read through mq_tensor_read_pb exactly as the
 * calibration reader and `run` read it.  The read from the fields around the data, the
 * description without it and protobuf-c's unpack of the whole file must agree: the same
 * tensor and name, or the same refusal.  A tensor that loads must also write back and read
 * again to the same type, shape and bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/tensor_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fast read (rc, t, name, err) against the full unpack and the description. */
static void same_as_unpacked(const char *path, int rc, const struct mq_tensor *t,
                             const char *name, const struct mq_error *err)
{
    struct mq_tensor full;
    struct mq_error full_err, info_err;
    char *full_name = NULL, *info_name = NULL;
    struct mq_tensor_pb_info info;
    int full_rc = mq_tensor_read_pb_unpacked(path, &full, &full_name, &full_err);
    int info_rc = mq_tensor_describe_pb(path, &info, &info_name, &info_err);
    if ((rc != 0) != (full_rc != 0) || (info_rc != 0) != (full_rc != 0))
        abort();
    if (full_rc) {
        if (strcmp(err->message, full_err.message) != 0 ||
            strcmp(info_err.message, full_err.message) != 0)
            abort();
        return;
    }
    size_t bytes = (size_t)full.count * mq_dtype_size(full.dtype);
    if (t->dtype != full.dtype || t->rank != full.rank || t->count != full.count ||
        memcmp(t->dims, full.dims, sizeof t->dims[0] * (size_t)t->rank) != 0 ||
        (bytes && memcmp(t->data, full.data, bytes) != 0) || !name != !full_name ||
        (name && strcmp(name, full_name) != 0))
        abort();
    if (info.dtype != full.dtype || info.rank != full.rank ||
        memcmp(info.dims, full.dims, sizeof info.dims[0] * (size_t)info.rank) != 0 ||
        !info_name != !full_name || (info_name && strcmp(info_name, full_name) != 0))
        abort();
    mq_tensor_free(&full);
    free(full_name);
    free(info_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("input_0.pb", data, size);
    struct mq_tensor t;
    struct mq_error err;
    char *name = NULL;
    int rc = mq_tensor_read_pb(path, &t, &name, &err);
    same_as_unpacked(path, rc, &t, name, &err);
    if (rc != 0) {
        /* Every refusal carries a message: an empty one would reach the user as "failed". */
        if (!err.message[0])
            abort();
        return 0;
    }
    char copy_path[256];
    snprintf(copy_path, sizeof copy_path, "%s/copy.pb", fuzz_dir_get());
    if (mq_tensor_write_pb(copy_path, &t, name, &err) == 0) {
        struct mq_tensor back;
        char *back_name = NULL;
        if (mq_tensor_read_pb(copy_path, &back, &back_name, &err) != 0)
            abort(); /* we wrote it ourselves: it must read back */
        size_t bytes = (size_t)t.count * mq_dtype_size(t.dtype);
        if (back.dtype != t.dtype || back.rank != t.rank || back.count != t.count ||
            memcmp(back.dims, t.dims, sizeof t.dims[0] * (size_t)t.rank) != 0 ||
            (bytes && memcmp(back.data, t.data, bytes) != 0) ||
            (name && (!back_name || strcmp(name, back_name) != 0)))
            abort();
        mq_tensor_free(&back);
        free(back_name);
    }
    mq_tensor_free(&t);
    free(name);
    return 0;
}
