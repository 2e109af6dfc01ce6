/*
 * .pb files holding one TensorProto (test_data_set_N/input_K.pb; see tensor_proto.h).
 *
 * The files calibration reads by the thousand are all alike: dims, data_type, name and
 * raw_data, nothing else.  Such a file is read from the bytes around its data: a scan of those
 * fields (the first few KiB and whatever follows the data), then the data straight into the
 * tensor, one copy; describing a file reads no data at all.  The scan accepts only what
 * protobuf-c would unpack to the same fields (each field at most once, lengths inside the
 * file, varints of the widths protobuf-c reads, names of printable ASCII); any other file
 * (typed data fields, external data, packed or unknown fields, anything corrupt, too large or
 * inconsistent) is read in full through the wire check, protobuf-c's unpack and
 * mq_tensor_from_proto, which also word every refusal: both ways give the same tensor, name
 * and messages.
 */
#include "model/tensor_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "model/model.h"
#include "model/wire_check.h"
#include "util/fileio.h"

/* Bytes read before the data, and the most read after it: fields beyond these go the full
   way. */
#define HEAD_BYTES 4096
#define TAIL_BYTES 4096

/* TensorProto field numbers the scan reads (onnx.proto). */
enum { F_DIMS = 1, F_DATA_TYPE = 2, F_NAME = 8, F_RAW_DATA = 9, F_DOC_STRING = 12 };

/* What the scan found. */
struct scan {
    int dtype;                  /* 0: no data_type field */
    int rank;
    int64_t dims[MQ_MAX_RANK];
    char *name;                 /* malloc'd; NULL: no name field */
    int has_name, has_data;
    uint64_t data_at, data_len; /* raw_data's bytes in the file */
};

enum scan_result { SCAN_DONE, SCAN_PAST_DATA, SCAN_OTHER };

/* A varint of at most max_bytes bytes wholly inside [*pos, end); -1 when it is not. */
static int varint(const uint8_t *buf, size_t end, size_t *pos, int max_bytes, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes && *pos < end; i++) {
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

/*
 * Scans the fields in buf, the file's bytes from offset `start` up to `len` bytes on.  The
 * data field may run past the buffer (up to the file's end): *resume is then the offset after
 * it.  SCAN_OTHER for anything the fast way does not take.
 */
static enum scan_result scan_fields(const uint8_t *buf, size_t len, uint64_t start,
                                    uint64_t file_size, struct scan *s, uint64_t *resume)
{
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, v;
        /* protobuf-c reads a tag of up to 5 bytes and a length of up to 5 (as 32 bits): the
           values taken here (small field numbers, lengths inside a file under 2^32 bytes)
           read the same both ways */
        if (varint(buf, len, &pos, 5, &key))
            return SCAN_OTHER;
        uint64_t field = key >> 3, wire = key & 7;
        if (field == F_DIMS && wire == 0) {
            if (varint(buf, len, &pos, 10, &v) || s->rank == MQ_MAX_RANK)
                return SCAN_OTHER;
            s->dims[s->rank++] = (int64_t)v;
        } else if (field == F_DATA_TYPE && wire == 0) {
            if (varint(buf, len, &pos, 5, &v) || s->dtype || v == 0 || v > 0x7fffffff)
                return SCAN_OTHER;
            s->dtype = (int)v;
        } else if ((field == F_NAME || field == F_DOC_STRING || field == F_RAW_DATA) &&
                   wire == 2) {
            if (varint(buf, len, &pos, 5, &v) || v > file_size - (start + pos))
                return SCAN_OTHER;
            if (field == F_RAW_DATA) {
                if (s->has_data)
                    return SCAN_OTHER;
                s->has_data = 1;
                s->data_at = start + pos;
                s->data_len = v;
                if (v > len - pos) { /* the data runs past what was read */
                    *resume = start + pos + v;
                    return SCAN_PAST_DATA;
                }
            } else if (v > len - pos) {
                return SCAN_OTHER;
            } else if (field == F_NAME) {
                if (s->has_name)
                    return SCAN_OTHER;
                for (uint64_t i = 0; i < v; i++)
                    if (buf[pos + i] < 0x20 || buf[pos + i] > 0x7e)
                        return SCAN_OTHER;
                s->name = malloc((size_t)v + 1);
                if (!s->name)
                    return SCAN_OTHER;
                memcpy(s->name, buf + pos, (size_t)v);
                s->name[v] = '\0';
                s->has_name = 1;
            }
            pos += (size_t)v;
        } else {
            return SCAN_OTHER;
        }
    }
    return SCAN_DONE;
}

/* count bytes at offset `at` of fd into dst; -1 when the file gives fewer. */
static int read_at(int fd, uint8_t *dst, size_t count, uint64_t at)
{
    size_t got = 0;
    while (got < count) {
        ssize_t r = pread(fd, dst + got, count - got, (off_t)(at + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/*
 * The fast way: 1 when it read the file (into *t when t is not NULL, always *info and, when
 * name is not NULL, *name), 0 when the file must go the full way (nothing is kept then).
 */
static int read_fast(const char *path, struct mq_tensor *t, struct mq_tensor_pb_info *info,
                     char **name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct scan s = {0};
    uint8_t head[HEAD_BYTES], tail[TAIL_BYTES];
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
             (uint64_t)st.st_size <= MQ_MODEL_MAX_BYTES;
    uint64_t size = ok ? (uint64_t)st.st_size : 0;
    size_t head_len = size < HEAD_BYTES ? (size_t)size : HEAD_BYTES;
    uint64_t resume = 0;
    enum scan_result r = SCAN_OTHER;
    if (ok && read_at(fd, head, head_len, 0) == 0)
        r = scan_fields(head, head_len, 0, size, &s, &resume);
    /* every byte of the file scanned: the head was all of it, or the data ran past the head
       and the fields after it (a few bytes at most) scan to the end */
    int whole = r == SCAN_DONE && head_len == size;
    if (r == SCAN_PAST_DATA && size - resume <= TAIL_BYTES) {
        size_t tail_len = (size_t)(size - resume);
        whole = tail_len == 0 || (read_at(fd, tail, tail_len, resume) == 0 &&
                                  scan_fields(tail, tail_len, resume, size, &s, &resume) ==
                                      SCAN_DONE);
    }
    ok = whole && s.has_data && s.dtype;
    /* what mq_tensor_proto_validate and mq_tensor_from_proto check on raw data; narrow types
       (unpacked from their file bytes) go the full way */
    int64_t count = ok ? mq_dims_count(s.rank, s.dims) : -1;
    ok = count >= 0 && mq_dtype_size(s.dtype) != 0 && mq_dtype_bits(s.dtype) >= 8 &&
         mq_dtype_file_bytes(s.dtype, (uint64_t)count) == s.data_len;
    if (ok && t) {
        const char *what = s.name && *s.name ? s.name : path;
        struct mq_error ignored;
        ok = mq_tensor_alloc_uninit(t, s.dtype, s.rank, s.dims, what, &ignored) == MQ_OK;
        /* the data's bytes already read, then the rest straight into the tensor */
        uint64_t in_head = s.data_at < head_len ? head_len - s.data_at : 0;
        if (in_head > s.data_len)
            in_head = s.data_len;
        if (ok && s.data_len) {
            if (in_head)
                memcpy(t->data, head + s.data_at, (size_t)in_head);
            ok = read_at(fd, (uint8_t *)t->data + in_head, (size_t)(s.data_len - in_head),
                         s.data_at + in_head) == 0;
            if (!ok)
                mq_tensor_free(t);
        }
    }
    close(fd);
    if (!ok) {
        free(s.name);
        return 0;
    }
    info->dtype = s.dtype;
    info->rank = s.rank;
    memset(info->dims, 0, sizeof info->dims);
    memcpy(info->dims, s.dims, sizeof(int64_t) * (size_t)s.rank);
    if (name)
        *name = s.name;
    else
        free(s.name);
    return 1;
}

/* The full way: the whole file checked and unpacked by protobuf-c. */
static int read_unpacked(const char *path, struct mq_tensor *out, char **name,
                         struct mq_error *err)
{
    uint8_t *bytes;
    size_t size;
    if (mq_file_read(path, MQ_MODEL_MAX_BYTES, &bytes, &size, err))
        return MQ_ERR;
    if (size == 0) {
        free(bytes);
        return mq_error_set(err, "%s: empty file, expected an ONNX TensorProto", path);
    }
    if (mq_wire_check(bytes, size, &onnx__tensor_proto__descriptor, path, err)) {
        free(bytes);
        return MQ_ERR;
    }
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, size, bytes);
    free(bytes);
    if (!p)
        return mq_error_set(err, "%s: not a valid ONNX TensorProto", path);
    if (!p->has_data_type || p->data_type == 0) {
        onnx__tensor_proto__free_unpacked(p, NULL);
        return mq_error_set(err, "%s: TensorProto has no data_type (not a tensor file?)", path);
    }
    int rc = mq_tensor_from_proto(p, p->name && *p->name ? p->name : path, out, err);
    if (rc == 0 && name && p->name) {
        *name = strdup(p->name);
        if (!*name) {
            mq_tensor_free(out);
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        }
    }
    if (rc)
        mq_error_prefix(err, "%s: ", path);
    onnx__tensor_proto__free_unpacked(p, NULL);
    return rc;
}

int mq_tensor_read_pb(const char *path, struct mq_tensor *out, char **name, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (name)
        *name = NULL;
    struct mq_tensor_pb_info info;
    if (read_fast(path, out, &info, name))
        return MQ_OK;
    memset(out, 0, sizeof *out);
    return read_unpacked(path, out, name, err);
}

int mq_tensor_read_pb_unpacked(const char *path, struct mq_tensor *out, char **name,
                               struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (name)
        *name = NULL;
    return read_unpacked(path, out, name, err);
}

int mq_tensor_describe_pb(const char *path, struct mq_tensor_pb_info *info, char **name,
                          struct mq_error *err)
{
    if (name)
        *name = NULL;
    if (read_fast(path, NULL, info, name))
        return MQ_OK;
    struct mq_tensor t;
    if (mq_tensor_read_pb_unpacked(path, &t, name, err))
        return MQ_ERR;
    info->dtype = t.dtype;
    info->rank = t.rank;
    memcpy(info->dims, t.dims, sizeof info->dims);
    mq_tensor_free(&t);
    return MQ_OK;
}
