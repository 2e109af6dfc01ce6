/*
 * libFuzzer target: a .npz archive (ZIP of .npy members) as `--calib` reads
 * one sample per archive: the directory and every member's header at open,
 * then each member's data with its CRC-32.  The archive is read both from a
 * file and from memory; the two must agree member for member.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_error err;
    struct mq_byte_source buffer_src, file_src;
    mq_byte_source_buffer(&buffer_src, data, size, "fuzz.npz");
    const char *path = fuzz_write_file("sample.npz", data, size);
    if (mq_byte_source_file(&file_src, path, &err) != 0)
        abort();
    struct mq_npz in_memory, on_disk;
    int rc_memory = mq_npz_open(&buffer_src, &in_memory, &err);
    int rc_disk = mq_npz_open(&file_src, &on_disk, &err);
    if ((rc_memory == 0) != (rc_disk == 0))
        abort();
    if (rc_memory != 0)
        return 0;
    if (in_memory.n != on_disk.n)
        abort();
    for (int i = 0; i < in_memory.n; i++) {
        if (mq_npz_find(&in_memory, in_memory.members[i].name) != i)
            abort(); /* names are unique, so each finds itself */
        struct mq_tensor a, b;
        int ra = mq_npz_load(&in_memory, i, &a, &err);
        int rb = mq_npz_load(&on_disk, i, &b, &err);
        if ((ra == 0) != (rb == 0))
            abort();
        if (ra != 0)
            continue;
        size_t bytes = (size_t)a.count * mq_dtype_size(a.dtype);
        if (a.dtype != b.dtype || a.count != b.count || a.rank != b.rank ||
            (bytes && memcmp(a.data, b.data, bytes) != 0))
            abort();
        mq_tensor_free(&a);
        mq_tensor_free(&b);
    }
    struct mq_tensor none;
    if (mq_npz_load(&in_memory, in_memory.n, &none, &err) == 0)
        abort();
    mq_npz_close(&in_memory);
    mq_npz_close(&on_disk);
    return 0;
}
