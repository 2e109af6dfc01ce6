/*
 * A pre-pass over protobuf wire bytes that refuses corrupt or hostile nesting before protobuf-c
 * unpacks them (see wire_check.h).
 */
#include "model/wire_check.h"

#include <inttypes.h>

static int read_varint(const uint8_t *p, size_t size, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= size)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

static int scan(const uint8_t *p, size_t size, const ProtobufCMessageDescriptor *d, int depth,
                size_t base, const char *label, struct mq_error *err)
{
    if (depth > MQ_WIRE_MAX_DEPTH)
        return mq_error_set(err, "%s: messages nested deeper than %d levels (at byte %zu); "
                            "the file is corrupt or hostile", label, MQ_WIRE_MAX_DEPTH, base);
    size_t pos = 0;
    while (pos < size) {
        size_t field_start = pos;
        uint64_t key;
        if (read_varint(p, size, &pos, &key))
            return mq_error_set(err, "%s: truncated or corrupt protobuf at byte %zu "
                                "(not an ONNX model?)", label, base + field_start);
        uint32_t field = (uint32_t)(key >> 3);
        unsigned wire = (unsigned)(key & 7);
        if (field == 0)
            return mq_error_set(err, "%s: invalid protobuf field number 0 at byte %zu "
                                "(not an ONNX model?)", label, base + field_start);
        uint64_t v = 0;
        switch (wire) {
        case 0:
            if (read_varint(p, size, &pos, &v))
                return mq_error_set(err, "%s: truncated varint at byte %zu", label, base + pos);
            break;
        case 1:
            if (size - pos < 8)
                return mq_error_set(err, "%s: truncated at byte %zu", label, base + pos);
            pos += 8;
            break;
        case 5:
            if (size - pos < 4)
                return mq_error_set(err, "%s: truncated at byte %zu", label, base + pos);
            pos += 4;
            break;
        case 2: {
            if (read_varint(p, size, &pos, &v) || v > size - pos)
                return mq_error_set(err, "%s: a field at byte %zu claims %" PRIu64
                                    " bytes but the file ends sooner (truncated?)",
                                    label, base + field_start, v);
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, field) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (scan(p + pos, (size_t)v, f->descriptor, depth + 1, base + pos, label, err))
                    return MQ_ERR;
            }
            pos += (size_t)v;
            break;
        }
        default:
            return mq_error_set(err, "%s: unsupported protobuf wire type %u at byte %zu "
                                "(not an ONNX model?)", label, wire, base + field_start);
        }
    }
    return MQ_OK;
}

int mq_wire_check(const uint8_t *bytes, size_t size, const ProtobufCMessageDescriptor *descriptor,
                  const char *label, struct mq_error *err)
{
    return scan(bytes, size, descriptor, 0, 0, label, err);
}
