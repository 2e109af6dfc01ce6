/*
 * libFuzzer target: a calibration or test-data file holding one TensorProto
 * (test_data_set_N/input_K.pb), read through mq_tensor_read_pb exactly as the
 * calibration reader and `run` read it.  A tensor that loads must also write
 * back and read again to the same type, shape and bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/tensor_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("input_0.pb", data, size);
    struct mq_tensor t;
    struct mq_error err;
    char *name = NULL;
    if (mq_tensor_read_pb(path, &t, &name, &err) != 0) {
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
