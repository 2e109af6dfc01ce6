/*
 * NumPy .npy arrays and .npz archives (ZIP files of .npy members): reading and writing (see
 * npy.h).
 */
#include "model/npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"

/* ---- byte sources ---------------------------------------------------------------------- */

int mq_byte_source_file(struct mq_byte_source *src, const char *path, struct mq_error *err)
{
    memset(src, 0, sizeof *src);
    struct stat st;
    if (stat(path, &st) != 0)
        return mq_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mq_error_set(err, "%s: not a regular file", path);
    src->path = path;
    src->size = (uint64_t)st.st_size;
    src->label = path;
    return MQ_OK;
}

void mq_byte_source_buffer(struct mq_byte_source *src, const uint8_t *bytes, size_t size,
                           const char *label)
{
    memset(src, 0, sizeof *src);
    src->bytes = bytes;
    src->size = size;
    src->label = label ? label : "buffer";
}

int mq_byte_source_read(const struct mq_byte_source *src, uint64_t offset, uint64_t length,
                        uint8_t *dst, struct mq_error *err)
{
    if (offset > src->size || length > src->size - offset)
        return mq_error_set(err, "%s: truncated: needs bytes %" PRIu64 "..%" PRIu64
                            " but has %" PRIu64, src->label, offset, offset + length, src->size);
    if (length == 0)
        return MQ_OK;
    if (src->path)
        return mq_file_read_range(src->path, offset, length, dst, err);
    memcpy(dst, src->bytes + offset, (size_t)length);
    return MQ_OK;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p) { return le32(p) | ((uint64_t)le32(p + 4) << 32); }

static int host_is_big_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* ---- dtypes ---------------------------------------------------------------------------- */

static const struct {
    char kind;
    int size;
    int dtype;
} npy_types[] = {
    {'f', 2, MQ_DTYPE_FLOAT16}, {'f', 4, MQ_DTYPE_FLOAT},  {'f', 8, MQ_DTYPE_DOUBLE},
    {'i', 1, MQ_DTYPE_INT8},    {'i', 2, MQ_DTYPE_INT16},  {'i', 4, MQ_DTYPE_INT32},
    {'i', 8, MQ_DTYPE_INT64},   {'u', 1, MQ_DTYPE_UINT8},  {'u', 2, MQ_DTYPE_UINT16},
    {'u', 4, MQ_DTYPE_UINT32},  {'u', 8, MQ_DTYPE_UINT64}, {'b', 1, MQ_DTYPE_BOOL},
};

const char *mq_npy_descr(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT16: return "<f2";
    case MQ_DTYPE_FLOAT: return "<f4";
    case MQ_DTYPE_DOUBLE: return "<f8";
    case MQ_DTYPE_INT8: return "|i1";
    case MQ_DTYPE_INT16: return "<i2";
    case MQ_DTYPE_INT32: return "<i4";
    case MQ_DTYPE_INT64: return "<i8";
    case MQ_DTYPE_UINT8: return "|u1";
    case MQ_DTYPE_UINT16: return "<u2";
    case MQ_DTYPE_UINT32: return "<u4";
    case MQ_DTYPE_UINT64: return "<u8";
    case MQ_DTYPE_BOOL: return "|b1";
    default: return NULL;
    }
}

static int parse_descr(const char *descr, const char *label, struct mq_npy_header *h,
                       struct mq_error *err)
{
    const char *p = descr;
    char order = '=';
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=')
        order = *p++;
    char kind = *p ? *p++ : '\0';
    int size = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        size = size * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '\0' && digits > 0) {
        for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
            if (npy_types[i].kind != kind || npy_types[i].size != size)
                continue;
            /* '|' means "byte order does not apply", which numpy only writes for 1-byte types. */
            if (order == '|' && size != 1)
                break;
            int big = order == '>' || (order == '=' && host_is_big_endian());
            h->dtype = npy_types[i].dtype;
            h->swap_bytes = size > 1 && big != host_is_big_endian();
            return MQ_OK;
        }
    }
    return mq_error_set(err, "%s: .npy element type '%s' is not supported (float16/32/64, "
                        "int8..64, uint8..64 and bool are)", label, descr);
}

/* ---- the header: a Python dict literal ------------------------------------------------- */

struct cursor {
    const char *p, *end;
    const char *label;
    struct mq_error *err;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int expect(struct cursor *c, char ch, const char *what)
{
    skip_space(c);
    if (c->p >= c->end || *c->p != ch)
        return mq_error_set(c->err, "%s: malformed .npy header: expected %s", c->label, what);
    c->p++;
    return MQ_OK;
}

/* A quoted Python string without escapes (the keys and dtype text numpy writes). */
static int parse_quoted(struct cursor *c, char *out, size_t size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return mq_error_set(c->err, "%s: malformed .npy header: expected a quoted string",
                            c->label);
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || (unsigned char)*c->p < 0x20 || n + 1 >= size)
            return mq_error_set(c->err, "%s: malformed .npy header: unexpected string",
                                c->label);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return mq_error_set(c->err, "%s: malformed .npy header: unterminated string", c->label);
    c->p++;
    out[n] = '\0';
    return MQ_OK;
}

static int parse_bool(struct cursor *c, int *out)
{
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = 1;
        return MQ_OK;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = 0;
        return MQ_OK;
    }
    return mq_error_set(c->err, "%s: malformed .npy header: fortran_order must be True or False",
                        c->label);
}

static int parse_shape(struct cursor *c, struct mq_npy_header *h)
{
    if (expect(c, '(', "'(' to start the shape"))
        return MQ_ERR;
    h->rank = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return MQ_OK;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return mq_error_set(c->err, "%s: malformed .npy header: expected a dimension",
                                c->label);
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int d = *c->p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return mq_error_set(c->err, "%s: .npy dimension is too large", c->label);
            v = v * 10 + d;
        }
        if (c->p < c->end && *c->p == 'L') /* written by Python 2 */
            c->p++;
        if (h->rank >= MQ_MAX_RANK)
            return mq_error_set(c->err, "%s: .npy array has more than %d dimensions", c->label,
                                MQ_MAX_RANK);
        h->dims[h->rank++] = v;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return MQ_OK;
        }
        return mq_error_set(c->err, "%s: malformed .npy header: expected ',' or ')' in the shape",
                            c->label);
    }
}

static int parse_dict(const char *text, size_t len, const char *label, struct mq_npy_header *h,
                      struct mq_error *err)
{
    struct cursor c = {text, text + len, label, err};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    char descr[64];
    if (expect(&c, '{', "'{'"))
        return MQ_ERR;
    for (;;) {
        skip_space(&c);
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        char key[32];
        if (parse_quoted(&c, key, sizeof key) || expect(&c, ':', "':' after a key"))
            return MQ_ERR;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            skip_space(&c);
            if (c.p < c.end && *c.p == '[')
                return mq_error_set(err, "%s: structured .npy arrays (records) are not supported",
                                    label);
            if (parse_quoted(&c, descr, sizeof descr))
                return MQ_ERR;
            seen_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            if (parse_bool(&c, &h->fortran_order))
                return MQ_ERR;
            seen_order = 1;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            if (parse_shape(&c, h))
                return MQ_ERR;
            seen_shape = 1;
        } else {
            return mq_error_set(err, "%s: malformed .npy header: unexpected or repeated key '%s'",
                                label, key);
        }
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (expect(&c, '}', "',' or '}'"))
            return MQ_ERR;
        break;
    }
    /* numpy pads the header with spaces up to a newline; a NUL pad appears in old files. */
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\n' || *c.p == '\r' || *c.p == '\0'))
        c.p++;
    if (c.p != c.end)
        return mq_error_set(err, "%s: malformed .npy header: text after the dictionary", label);
    if (!seen_descr || !seen_order || !seen_shape)
        return mq_error_set(err, "%s: .npy header lacks '%s'", label,
                            !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    return parse_descr(descr, label, h, err);
}

int mq_npy_read_header(const struct mq_byte_source *src, uint64_t offset, uint64_t length,
                       struct mq_npy_header *h, struct mq_error *err)
{
    memset(h, 0, sizeof *h);
    const char *label = src->label;
    uint8_t pre[12];
    if (length < 10)
        return mq_error_set(err, "%s: not a .npy array (%" PRIu64 " bytes)", label, length);
    if (mq_byte_source_read(src, offset, length < 12 ? 10 : 12, pre, err))
        return MQ_ERR;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return mq_error_set(err, "%s: not a .npy array (no \\x93NUMPY magic)", label);
    uint64_t header_len, start;
    if (pre[6] == 1) {
        header_len = le16(pre + 8);
        start = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (length < 12)
            return mq_error_set(err, "%s: truncated .npy header", label);
        header_len = le32(pre + 8);
        start = 12;
    } else {
        return mq_error_set(err, "%s: .npy format version %d.%d is not supported", label, pre[6],
                            pre[7]);
    }
    if (header_len > MQ_NPY_MAX_HEADER)
        return mq_error_set(err, "%s: .npy header of %" PRIu64 " bytes is larger than the %u "
                            "accepted", label, header_len, MQ_NPY_MAX_HEADER);
    if (header_len > length - start)
        return mq_error_set(err, "%s: truncated .npy header (%" PRIu64 " bytes announced, %" PRIu64
                            " present)", label, header_len, length - start);
    char *text = malloc(header_len ? header_len : 1);
    if (!text)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", label);
    int rc = mq_byte_source_read(src, offset + start, header_len, (uint8_t *)text, err);
    if (rc == MQ_OK)
        rc = parse_dict(text, (size_t)header_len, label, h, err);
    free(text);
    if (rc)
        return rc;

    h->count = mq_dims_count(h->rank, h->dims);
    if (h->count < 0)
        return mq_error_set(err, "%s: .npy shape has too many elements", label);
    uint64_t esize = mq_dtype_size(h->dtype);
    if ((uint64_t)h->count > UINT64_MAX / esize)
        return mq_error_set(err, "%s: .npy shape has too many elements", label);
    h->data_offset = start + header_len;
    h->data_bytes = (uint64_t)h->count * esize;
    uint64_t have = length - h->data_offset;
    if (have != h->data_bytes) {
        char shape[256];
        return mq_error_set(err, "%s: .npy data is %" PRIu64 " bytes but %s %s needs %" PRIu64
                            "%s", label, have, mq_dtype_name(h->dtype),
                            mq_shape_format(h->rank, h->dims, shape, sizeof shape), h->data_bytes,
                            have < h->data_bytes ? " (truncated file)" : " (trailing bytes)");
    }
    return MQ_OK;
}

/* ---- data ------------------------------------------------------------------------------ */

static void swap_elements(uint8_t *data, int64_t count, size_t esize)
{
    for (int64_t i = 0; i < count; i++) {
        uint8_t *e = data + (size_t)i * esize;
        for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
            uint8_t t = e[a];
            e[a] = e[b];
            e[b] = t;
        }
    }
}

/* dst (C order) from src (Fortran order, the same dims). */
static void fortran_to_c(uint8_t *dst, const uint8_t *src, int rank, const int64_t *dims,
                         int64_t count, size_t esize)
{
    int64_t idx[MQ_MAX_RANK] = {0};
    int64_t fstride[MQ_MAX_RANK];
    int64_t s = 1;
    for (int k = 0; k < rank; k++) {
        fstride[k] = s;
        s *= dims[k];
    }
    int64_t f = 0;
    for (int64_t i = 0; i < count; i++) {
        memcpy(dst + (size_t)i * esize, src + (size_t)f * esize, esize);
        /* Advance the C-order index (last axis fastest) and keep f in step. */
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < dims[k]) {
                f += fstride[k];
                break;
            }
            f -= fstride[k] * (dims[k] - 1);
            idx[k] = 0;
        }
    }
}

/* Reads raw bytes into t->data, then fixes byte order, layout and bool values. */
static int load_data(const struct mq_byte_source *src, uint64_t data_start, int rank,
                     const int64_t *dims, const struct mq_npy_header *h, int fortran,
                     struct mq_tensor *out, uint32_t *crc, struct mq_error *err)
{
    if (mq_tensor_alloc(out, h->dtype, rank, dims, src->label, err))
        return MQ_ERR_MEMORY;
    size_t esize = mq_dtype_size(h->dtype);
    uint64_t bytes = (uint64_t)out->count * esize;
    if (mq_byte_source_read(src, data_start, bytes, out->data, err)) {
        mq_tensor_free(out);
        return MQ_ERR;
    }
    if (crc)
        *crc = mq_crc32(*crc, out->data, (size_t)bytes);
    if (h->swap_bytes)
        swap_elements(out->data, out->count, esize);
    if (fortran && rank > 1 && out->count > 1) {
        uint8_t *copy = malloc((size_t)bytes);
        if (!copy) {
            mq_tensor_free(out);
            return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory reordering %" PRIu64
                                 " bytes", src->label, bytes);
        }
        memcpy(copy, out->data, (size_t)bytes);
        fortran_to_c(out->data, copy, rank, dims, out->count, esize);
        free(copy);
    }
    if (h->dtype == MQ_DTYPE_BOOL) {
        uint8_t *b = out->data;
        for (int64_t i = 0; i < out->count; i++)
            b[i] = b[i] != 0;
    }
    return MQ_OK;
}

static int npy_load_crc(const struct mq_byte_source *src, uint64_t offset,
                        const struct mq_npy_header *h, struct mq_tensor *out, uint32_t *crc,
                        struct mq_error *err)
{
    if (crc) {
        /* The CRC covers the member's bytes as stored: header first. */
        uint8_t *head = malloc((size_t)h->data_offset);
        if (!head)
            return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", src->label);
        int rc = mq_byte_source_read(src, offset, h->data_offset, head, err);
        if (rc == MQ_OK)
            *crc = mq_crc32(*crc, head, (size_t)h->data_offset);
        free(head);
        if (rc)
            return rc;
    }
    return load_data(src, offset + h->data_offset, h->rank, h->dims, h, h->fortran_order, out,
                     crc, err);
}

int mq_npy_load(const struct mq_byte_source *src, uint64_t offset, const struct mq_npy_header *h,
                struct mq_tensor *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    return npy_load_crc(src, offset, h, out, NULL, err);
}

int mq_npy_load_slice(const struct mq_byte_source *src, uint64_t offset,
                      const struct mq_npy_header *h, int64_t index, struct mq_tensor *out,
                      struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (h->rank < 1)
        return mq_error_set(err, "%s: a scalar .npy has no sample axis", src->label);
    if (index < 0 || index >= h->dims[0])
        return mq_error_set(err, "%s: sample %" PRId64 " is past the first axis (%" PRId64 ")",
                            src->label, index, h->dims[0]);
    if (h->fortran_order && h->rank > 1)
        return mq_error_set(err, "%s: a Fortran-ordered array cannot be read one sample at a "
                            "time; save it in C order (numpy.ascontiguousarray)", src->label);
    uint64_t slice_bytes = h->data_bytes / (uint64_t)h->dims[0];
    return load_data(src, offset + h->data_offset + (uint64_t)index * slice_bytes, h->rank - 1,
                     h->dims + 1, h, 0, out, NULL, err);
}

int mq_npy_decode(const uint8_t *bytes, size_t size, const char *label, struct mq_tensor *out,
                  struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct mq_byte_source src;
    mq_byte_source_buffer(&src, bytes, size, label);
    struct mq_npy_header h;
    if (mq_npy_read_header(&src, 0, size, &h, err))
        return MQ_ERR;
    return mq_npy_load(&src, 0, &h, out, err);
}

int mq_npy_read(const char *path, struct mq_tensor *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct mq_byte_source src;
    struct mq_npy_header h;
    if (mq_byte_source_file(&src, path, err) || mq_npy_read_header(&src, 0, src.size, &h, err))
        return MQ_ERR;
    return mq_npy_load(&src, 0, &h, out, err);
}

int mq_npy_encode(const struct mq_tensor *t, uint8_t **bytes, size_t *size, struct mq_error *err)
{
    *bytes = NULL;
    *size = 0;
    const char *descr = mq_npy_descr(t->dtype);
    if (!descr)
        return mq_error_set(err, "%s tensors cannot be written as .npy", mq_dtype_name(t->dtype));
    char dict[64 + MQ_MAX_RANK * 24];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
    /* numpy aligns the data to 64 bytes and ends the padded header with a newline. */
    size_t header_len = ((size_t)n + 1 + 10 + 63) / 64 * 64 - 10;
    size_t esize = mq_dtype_size(t->dtype);
    size_t data = (size_t)t->count * esize;
    size_t total = 10 + header_len + data;
    uint8_t *out = malloc(total);
    if (!out)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory encoding a .npy of %zu bytes",
                             total);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)(header_len & 0xff);
    out[9] = (uint8_t)(header_len >> 8);
    memset(out + 10, ' ', header_len);
    memcpy(out + 10, dict, (size_t)n);
    out[10 + header_len - 1] = '\n';
    if (data)
        memcpy(out + 10 + header_len, t->data, data);
    if (host_is_big_endian() && esize > 1)
        swap_elements(out + 10 + header_len, t->count, esize);
    *bytes = out;
    *size = total;
    return MQ_OK;
}

int mq_npy_write(const char *path, const struct mq_tensor *t, struct mq_error *err)
{
    uint8_t *bytes;
    size_t size;
    if (mq_npy_encode(t, &bytes, &size, err))
        return MQ_ERR;
    int rc = mq_file_write_atomic(path, bytes, size, err);
    free(bytes);
    return rc;
}

/* ---- CRC-32 ---------------------------------------------------------------------------- */

uint32_t mq_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    /* Four bits at a time: a table small enough to write out, fast enough for sample files. */
    static const uint32_t table[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

/* ---- .npz ------------------------------------------------------------------------------ */

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_MAX_DIRECTORY (64u << 20)

struct zip_directory {
    uint64_t entries;
    uint64_t offset;
    uint64_t size;
    uint64_t end;            /* where the end records start: members and directory lie before */
};

static int find_directory(const struct mq_byte_source *src, struct zip_directory *d,
                          struct mq_error *err)
{
    const char *label = src->label;
    if (src->size < 22)
        return mq_error_set(err, "%s: not a ZIP archive (.npz): too short", label);
    uint64_t tail_len = src->size < 22 + 65535 ? src->size : 22 + 65535;
    uint64_t tail_start = src->size - tail_len;
    uint8_t *tail = malloc((size_t)tail_len);
    if (!tail)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", label);
    if (mq_byte_source_read(src, tail_start, tail_len, tail, err)) {
        free(tail);
        return MQ_ERR;
    }
    /* The end record is the last one whose comment reaches exactly to the end of the file. */
    int64_t at = -1;
    for (int64_t p = (int64_t)tail_len - 22; p >= 0; p--) {
        const uint8_t *e = tail + p;
        if (le32(e) == ZIP_EOCD_SIG && (uint64_t)p + 22 + le16(e + 20) == tail_len) {
            at = p;
            break;
        }
    }
    if (at < 0) {
        free(tail);
        return mq_error_set(err, "%s: not a ZIP archive (.npz): no end-of-directory record",
                            label);
    }
    const uint8_t *e = tail + at;
    uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);
    uint16_t on_disk = le16(e + 8), total = le16(e + 10);
    d->size = le32(e + 12);
    d->offset = le32(e + 16);
    d->entries = total;
    d->end = tail_start + (uint64_t)at;
    free(tail);
    int zip64 = total == 0xffff || on_disk == 0xffff || d->size == 0xffffffffu ||
                d->offset == 0xffffffffu;
    if (!zip64 && (disk != 0 || cd_disk != 0 || on_disk != total))
        return mq_error_set(err, "%s: multi-part ZIP archives are not supported", label);
    if (zip64) {
        uint8_t loc[20], rec[56];
        if (d->end < 20 || mq_byte_source_read(src, d->end - 20, 20, loc, err) ||
            le32(loc) != ZIP64_LOCATOR_SIG)
            return mq_error_set(err, "%s: ZIP64 archive without its locator record", label);
        uint64_t rec_at = le64(loc + 8);
        if (rec_at > d->end - 20 || d->end - 20 - rec_at < 56 ||
            mq_byte_source_read(src, rec_at, 56, rec, err) || le32(rec) != ZIP64_EOCD_SIG)
            return mq_error_set(err, "%s: ZIP64 end-of-directory record is missing or out of "
                                "place", label);
        if (le32(rec + 16) != 0 || le32(rec + 20) != 0 || le64(rec + 24) != le64(rec + 32))
            return mq_error_set(err, "%s: multi-part ZIP archives are not supported", label);
        d->entries = le64(rec + 32);
        d->size = le64(rec + 40);
        d->offset = le64(rec + 48);
        d->end = rec_at;
    }
    if (d->offset > d->end || d->size > d->end - d->offset)
        return mq_error_set(err, "%s: ZIP directory lies outside the archive", label);
    if (d->entries > MQ_NPZ_MAX_MEMBERS)
        return mq_error_set(err, "%s: %" PRIu64 " members, more than the %d accepted", label,
                            d->entries, MQ_NPZ_MAX_MEMBERS);
    if (d->size > ZIP_MAX_DIRECTORY)
        return mq_error_set(err, "%s: ZIP directory of %" PRIu64 " bytes is too large", label,
                            d->size);
    return MQ_OK;
}

/* Replaces the 32-bit fields that hold 0xffffffff with their ZIP64 extra-field values. */
static int apply_zip64_extra(const uint8_t *extra, size_t len, uint64_t *uncomp, uint64_t *comp,
                             uint64_t *local)
{
    size_t p = 0;
    while (p + 4 <= len) {
        uint16_t id = le16(extra + p), n = le16(extra + p + 2);
        if (n > len - p - 4)
            return MQ_ERR;
        if (id == 1) {
            const uint8_t *f = extra + p + 4;
            size_t k = 0;
            uint64_t *fields[3] = {uncomp, comp, local};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xffffffffu)
                    continue;
                if (k + 8 > n)
                    return MQ_ERR;
                *fields[i] = le64(f + k);
                k += 8;
            }
        }
        p += 4 + (size_t)n;
    }
    return MQ_OK;
}

static int read_member(const struct mq_byte_source *src, const uint8_t *cd, size_t cd_size,
                       size_t *pos, const struct zip_directory *d, struct mq_npz_member *m,
                       struct mq_error *err)
{
    const char *label = src->label;
    size_t p = *pos;
    if (cd_size - p < 46 || le32(cd + p) != ZIP_CENTRAL_SIG)
        return mq_error_set(err, "%s: ZIP directory is corrupt (entry at %zu)", label, p);
    const uint8_t *e = cd + p;
    uint16_t flags = le16(e + 8), method = le16(e + 10);
    uint32_t crc = le32(e + 16);
    uint64_t comp = le32(e + 20), uncomp = le32(e + 24), local = le32(e + 42);
    size_t name_len = le16(e + 28), extra_len = le16(e + 30), comment_len = le16(e + 32);
    if (name_len + extra_len + comment_len > cd_size - p - 46)
        return mq_error_set(err, "%s: ZIP directory is corrupt (entry at %zu)", label, p);
    const char *name = (const char *)e + 46;
    if (apply_zip64_extra(e + 46 + name_len, extra_len, &uncomp, &comp, &local))
        return mq_error_set(err, "%s: ZIP64 extra field is corrupt", label);
    *pos = p + 46 + name_len + extra_len + comment_len;

    if (name_len == 0 || memchr(name, '\0', name_len))
        return mq_error_set(err, "%s: ZIP member with an empty or invalid name", label);
    m->name = strndup(name, name_len);
    if (!m->name)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", label);
    if (name_len <= 4 || strcmp(m->name + name_len - 4, ".npy") != 0)
        return mq_error_set(err, "%s: member '%s' is not a .npy array", label, m->name);
    if (flags & 1)
        return mq_error_set(err, "%s: member '%s' is encrypted", label, m->name);
    if (method == 8)
        return mq_error_set(err, "%s: member '%s' is compressed (deflate); only stored .npz "
                            "archives are read: save with numpy.savez, not "
                            "numpy.savez_compressed", label, m->name);
    if (method != 0)
        return mq_error_set(err, "%s: member '%s' uses ZIP compression method %u; only stored "
                            ".npz archives are read (numpy.savez)", label, m->name, method);
    if (comp != uncomp)
        return mq_error_set(err, "%s: member '%s' is stored but its sizes differ", label,
                            m->name);
    m->name[name_len - 4] = '\0';

    uint8_t lh[30];
    if (local > d->end || d->end - local < 30 || mq_byte_source_read(src, local, 30, lh, err) ||
        le32(lh) != ZIP_LOCAL_SIG)
        return mq_error_set(err, "%s: member '%s.npy': local header missing or out of place",
                            label, m->name);
    if (le16(lh + 8) != 0)
        return mq_error_set(err, "%s: member '%s.npy': local header disagrees with the "
                            "directory on compression", label, m->name);
    uint64_t data = local + 30 + le16(lh + 26) + le16(lh + 28);
    if (data > d->end || comp > d->end - data)
        return mq_error_set(err, "%s: member '%s.npy' runs past the end of its archive", label,
                            m->name);
    m->offset = data;
    m->size = comp;
    m->crc32 = crc;
    char member_label[512];
    struct mq_byte_source msrc = *src;
    snprintf(member_label, sizeof member_label, "%s, member '%s.npy'", label, m->name);
    msrc.label = member_label;
    return mq_npy_read_header(&msrc, data, comp, &m->header, err);
}

int mq_npz_open(const struct mq_byte_source *src, struct mq_npz *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    const char *label = src->label ? src->label : (src->path ? src->path : "archive");
    out->label = strdup(label);
    out->path = src->path ? strdup(src->path) : NULL;
    if (!out->label || (src->path && !out->path)) {
        mq_npz_close(out);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    out->src = *src;
    out->src.label = out->label;
    out->src.path = out->path;

    struct zip_directory d;
    if (find_directory(&out->src, &d, err)) {
        mq_npz_close(out);
        return MQ_ERR;
    }
    uint8_t *cd = malloc(d.size ? (size_t)d.size : 1);
    out->members = calloc(d.entries ? (size_t)d.entries : 1, sizeof *out->members);
    if (!cd || !out->members) {
        free(cd);
        mq_npz_close(out);
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", label);
    }
    int rc = mq_byte_source_read(&out->src, d.offset, d.size, cd, err);
    size_t pos = 0;
    for (uint64_t i = 0; rc == MQ_OK && i < d.entries; i++) {
        rc = read_member(&out->src, cd, (size_t)d.size, &pos, &d, &out->members[i], err);
        out->n = (int)i + 1;
        for (uint64_t j = 0; rc == MQ_OK && j < i; j++)
            if (strcmp(out->members[j].name, out->members[i].name) == 0)
                rc = mq_error_set(err, "%s: member '%s.npy' appears twice", label,
                                  out->members[i].name);
    }
    if (rc == MQ_OK && pos != d.size)
        rc = mq_error_set(err, "%s: ZIP directory holds more than its %" PRIu64 " entries", label,
                          d.entries);
    free(cd);
    if (rc)
        mq_npz_close(out);
    return rc;
}

int mq_npz_find(const struct mq_npz *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->members[i].name, name) == 0)
            return i;
    return -1;
}

int mq_npz_load(const struct mq_npz *z, int i, struct mq_tensor *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= z->n)
        return mq_error_set(err, "%s: no member %d", z->label, i);
    const struct mq_npz_member *m = &z->members[i];
    uint32_t crc = 0;
    char member_label[512];
    struct mq_byte_source msrc = z->src;
    snprintf(member_label, sizeof member_label, "%s, member '%s.npy'", z->label, m->name);
    msrc.label = member_label;
    int rc = npy_load_crc(&msrc, m->offset, &m->header, out, &crc, err);
    if (rc)
        return rc;
    if (crc != m->crc32) {
        mq_tensor_free(out);
        return mq_error_set(err, "%s: member '%s.npy' is corrupt (CRC-32 %08x, directory says "
                            "%08x)", z->label, m->name, crc, m->crc32);
    }
    return MQ_OK;
}

void mq_npz_close(struct mq_npz *z)
{
    if (z->members)
        for (int i = 0; i < z->n; i++)
            free(z->members[i].name);
    free(z->members);
    free(z->label);
    free(z->path);
    memset(z, 0, sizeof *z);
}
