/*
 * A pre-pass over protobuf wire bytes before protobuf-c unpacks them: checks
 * that every length fits in its parent and bounds the nesting depth, so a
 * corrupt or hostile file cannot exhaust the stack inside the unpacker.
 */
#ifndef MQ_WIRE_CHECK_H
#define MQ_WIRE_CHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MQ_WIRE_MAX_DEPTH 100

int mq_wire_check(const uint8_t *bytes, size_t size, const ProtobufCMessageDescriptor *descriptor,
                  const char *label, struct mq_error *err);

#endif
