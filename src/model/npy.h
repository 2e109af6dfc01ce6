/*
 * NumPy .npy arrays and .npz archives (ZIP files of .npy members).
 *
 * These parse bytes that come from users, so every length and offset is
 * checked before it is used.  Both formats are read through a `source`: a
 * file read piece by piece (headers only, until a member is loaded) or a
 * buffer in memory (the fuzz targets use that one), with the same parser.
 *
 * Supported element types: float16/32/64, int8/16/32/64, uint8/16/32/64,
 * bool, either byte order, C or Fortran order.  .npz members must be stored
 * (numpy.savez); compressed members (numpy.savez_compressed) are refused with
 * a message that says so.
 */
#ifndef MQ_NPY_H
#define MQ_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "util/error.h"

/* Headers longer than this are refused (numpy's own reader stops at 10000 bytes). */
#define MQ_NPY_MAX_HEADER (1u << 20)
/* Members in one .npz. */
#define MQ_NPZ_MAX_MEMBERS 65536

/* Where bytes come from: a file (path) or a buffer (bytes, size). */
struct mq_byte_source {
    const char *path;        /* file to read from, or NULL */
    const uint8_t *bytes;    /* else this buffer */
    uint64_t size;           /* total bytes available (file size or buffer size) */
    const char *label;       /* names the source in messages */
};

/* Fills a source for a file (stat'ed now) or a buffer. */
int mq_byte_source_file(struct mq_byte_source *src, const char *path, struct mq_error *err);
void mq_byte_source_buffer(struct mq_byte_source *src, const uint8_t *bytes, size_t size,
                           const char *label);
/* Reads [offset, offset+length) into dst; fails cleanly when out of range. */
int mq_byte_source_read(const struct mq_byte_source *src, uint64_t offset, uint64_t length,
                        uint8_t *dst, struct mq_error *err);

/* What a .npy header says. */
struct mq_npy_header {
    int dtype;               /* enum mq_dtype */
    int swap_bytes;          /* stored big-endian: swap on load */
    int fortran_order;
    int rank;
    int64_t dims[MQ_MAX_RANK];
    int64_t count;           /* elements */
    uint64_t data_offset;    /* from the start of the .npy to its first data byte */
    uint64_t data_bytes;     /* count * element size */
};

/*
 * Parses the .npy header of the array that starts at `offset` in src and
 * whose bytes end at offset + length (the data must be exactly as long as
 * the header says).  Reads only the header.
 */
int mq_npy_read_header(const struct mq_byte_source *src, uint64_t offset, uint64_t length,
                       struct mq_npy_header *h, struct mq_error *err);
/* Loads the data described by h (from src at offset + h->data_offset) into out (C order). */
int mq_npy_load(const struct mq_byte_source *src, uint64_t offset, const struct mq_npy_header *h,
                struct mq_tensor *out, struct mq_error *err);
/*
 * Loads the slice [index] along the first axis (the "sample axis" of a stacked
 * array): out has dims[1:] of the header.  C order only.
 */
int mq_npy_load_slice(const struct mq_byte_source *src, uint64_t offset,
                      const struct mq_npy_header *h, int64_t index, struct mq_tensor *out,
                      struct mq_error *err);

/* Whole .npy file. */
int mq_npy_read(const char *path, struct mq_tensor *out, struct mq_error *err);
/* Whole .npy in memory. */
int mq_npy_decode(const uint8_t *bytes, size_t size, const char *label, struct mq_tensor *out,
                  struct mq_error *err);
/* Version 1.0 .npy bytes for t (malloc'd); little-endian, C order. */
int mq_npy_encode(const struct mq_tensor *t, uint8_t **bytes, size_t *size,
                  struct mq_error *err);
/* Writes t as a .npy file atomically. */
int mq_npy_write(const char *path, const struct mq_tensor *t, struct mq_error *err);

/* numpy's dtype text for an mq dtype ("<f4"); NULL when numpy has none. */
const char *mq_npy_descr(int dtype);

struct mq_npz_member {
    char *name;              /* the key: member name without ".npy" */
    uint64_t offset;         /* of the member's .npy bytes in the archive */
    uint64_t size;           /* of the member's .npy bytes */
    uint32_t crc32;          /* as the central directory records it */
    struct mq_npy_header header;
};

struct mq_npz {
    struct mq_byte_source src; /* path and label point at the owned copies below */
    char *path;
    char *label;
    int n;
    struct mq_npz_member *members; /* in archive order */
};

/* Reads the archive's directory and each member's .npy header (not the data). */
int mq_npz_open(const struct mq_byte_source *src, struct mq_npz *out, struct mq_error *err);
/* Member index by key, -1 when absent. */
int mq_npz_find(const struct mq_npz *z, const char *name);
/* Loads member i, checking its CRC-32.  Safe to call from several threads at once. */
int mq_npz_load(const struct mq_npz *z, int i, struct mq_tensor *out, struct mq_error *err);
void mq_npz_close(struct mq_npz *z);

/* CRC-32 as ZIP computes it; `crc` is 0 to start, the previous result to continue. */
uint32_t mq_crc32(uint32_t crc, const uint8_t *data, size_t n);

#endif
