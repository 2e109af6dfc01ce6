/*
 * libFuzzer target: a .npy array, as `--calib` reads one sample per file
 * (mq_npy_read on a file, mq_npy_decode in memory) and as a stacked array is
 * read one sample at a time along its first axis (mq_npy_load_slice).
 * Properties checked beyond "no crash": the file and the buffer readers agree,
 * a slice equals the same rows of the whole array, and an array that loads
 * encodes and decodes back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_tensor(const struct mq_tensor *a, const struct mq_tensor *b)
{
    size_t bytes = (size_t)a->count * mq_dtype_size(a->dtype);
    return a->dtype == b->dtype && a->rank == b->rank && a->count == b->count &&
           memcmp(a->dims, b->dims, sizeof a->dims[0] * (size_t)a->rank) == 0 &&
           (bytes == 0 || memcmp(a->data, b->data, bytes) == 0);
}

static void check_slices(const uint8_t *data, size_t size, const struct mq_tensor *whole)
{
    struct mq_byte_source src;
    mq_byte_source_buffer(&src, data, size, "fuzz.npy");
    struct mq_npy_header h;
    struct mq_error err;
    if (mq_npy_read_header(&src, 0, size, &h, &err) != 0)
        abort(); /* mq_npy_decode read this header a moment ago */
    if (h.rank < 1 || h.dims[0] < 1 || (h.fortran_order && h.rank > 1))
        return;
    size_t row = (size_t)whole->count / (size_t)h.dims[0] * mq_dtype_size(whole->dtype);
    int64_t picks[2] = {0, h.dims[0] - 1};
    for (int k = 0; k < 2; k++) {
        struct mq_tensor s;
        if (mq_npy_load_slice(&src, 0, &h, picks[k], &s, &err) != 0)
            abort();
        if (s.rank != h.rank - 1 || (row && memcmp(s.data, (const uint8_t *)whole->data +
                                                   (size_t)picks[k] * row, row) != 0))
            abort();
        mq_tensor_free(&s);
    }
    struct mq_tensor past;
    if (mq_npy_load_slice(&src, 0, &h, h.dims[0], &past, &err) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_error err;
    struct mq_tensor from_buffer, from_file;
    int rc_buffer = mq_npy_decode(data, size, "fuzz.npy", &from_buffer, &err);
    const char *path = fuzz_write_file("input.npy", data, size);
    int rc_file = mq_npy_read(path, &from_file, &err);
    if ((rc_buffer == 0) != (rc_file == 0))
        abort();
    if (rc_buffer != 0)
        return 0;
    if (!same_tensor(&from_buffer, &from_file))
        abort();
    mq_tensor_free(&from_file);
    check_slices(data, size, &from_buffer);

    uint8_t *encoded;
    size_t encoded_size;
    if (mq_npy_encode(&from_buffer, &encoded, &encoded_size, &err) == 0) {
        struct mq_tensor back;
        if (mq_npy_decode(encoded, encoded_size, "encoded", &back, &err) != 0)
            abort();
        if (!same_tensor(&from_buffer, &back))
            abort();
        mq_tensor_free(&back);
        free(encoded);
    }
    mq_tensor_free(&from_buffer);
    return 0;
}
