/* Saving, loading and freeing the channel maxima of a ranges file (calib/ranges.c's helpers). */
#ifndef MQ_CALIB_RANGES_CHANNELS_H
#define MQ_CALIB_RANGES_CHANNELS_H

#include "calib/ranges.h"
#include "util/json.h"
#include "util/json_read.h"

/* Writes "channel_maxima": [{"name": ..., "max": [...]}, ...] when there are any. */
void mq_ranges_write_channel_maxima(struct mq_json *j, const struct mq_ranges *ranges);
/* Reads the optional "channel_maxima" of a ranges file's root object, strictly. */
int mq_ranges_read_channel_maxima(const struct mq_json_value *root, const char *path,
                                  struct mq_ranges *out, struct mq_error *err);
void mq_ranges_free_channel_maxima(struct mq_ranges *ranges);

#endif
