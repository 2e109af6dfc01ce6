/*
 * The channel maxima kept in a ranges file (calib/ranges.h): adding and
 * merging them, and their JSON form, "channel_maxima": [{"name", "max"}].
 */
#include "calib/ranges_channels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A channel count beyond this in a file is corrupt, not a tensor (no layer is that wide). */
#define MAX_CHANNELS ((int64_t)1 << 24)

const struct mq_channel_maxima *mq_ranges_find_channel_maxima(const struct mq_ranges *ranges,
                                                              const char *name)
{
    for (int i = 0; i < ranges->n_channel_maxima; i++)
        if (strcmp(ranges->channel_maxima[i].name, name) == 0)
            return &ranges->channel_maxima[i];
    return NULL;
}

int mq_ranges_add_channel_maxima(struct mq_ranges *ranges, const char *name, int64_t channels,
                                 const double *max, struct mq_error *err)
{
    struct mq_channel_maxima *have =
        (struct mq_channel_maxima *)mq_ranges_find_channel_maxima(ranges, name);
    if (have) {
        if (have->channels != channels)
            return mq_error_set(err, "channel maxima of '%s': %lld channels here, %lld before",
                                name, (long long)channels, (long long)have->channels);
        for (int64_t c = 0; c < channels; c++)
            have->max[c] = fmax(have->max[c], max[c]);
        return MQ_OK;
    }
    if (channels < 1 || channels > MAX_CHANNELS)
        return mq_error_set(err, "channel maxima of '%s': %lld channels", name,
                            (long long)channels);
    struct mq_channel_maxima *grown =
        realloc(ranges->channel_maxima, ((size_t)ranges->n_channel_maxima + 1) * sizeof *grown);
    if (!grown)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    ranges->channel_maxima = grown;
    struct mq_channel_maxima *m = &grown[ranges->n_channel_maxima];
    m->name = strdup(name);
    m->max = malloc((size_t)channels * sizeof *m->max);
    m->channels = channels;
    if (!m->name || !m->max) {
        free(m->name);
        free(m->max);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    memcpy(m->max, max, (size_t)channels * sizeof *m->max);
    ranges->n_channel_maxima++;
    return MQ_OK;
}

int mq_ranges_merge_channel_maxima(struct mq_ranges *into, const struct mq_ranges *from,
                                   struct mq_error *err)
{
    for (int i = 0; i < from->n_channel_maxima; i++) {
        const struct mq_channel_maxima *m = &from->channel_maxima[i];
        if (mq_ranges_add_channel_maxima(into, m->name, m->channels, m->max, err))
            return MQ_ERR;
    }
    return MQ_OK;
}

void mq_ranges_free_channel_maxima(struct mq_ranges *ranges)
{
    for (int i = 0; i < ranges->n_channel_maxima; i++) {
        free(ranges->channel_maxima[i].name);
        free(ranges->channel_maxima[i].max);
    }
    free(ranges->channel_maxima);
    ranges->channel_maxima = NULL;
    ranges->n_channel_maxima = 0;
}

void mq_ranges_write_channel_maxima(struct mq_json *j, const struct mq_ranges *ranges)
{
    if (!ranges->n_channel_maxima)
        return;
    mq_json_key(j, "channel_maxima");
    mq_json_array_begin(j);
    for (int i = 0; i < ranges->n_channel_maxima; i++) {
        const struct mq_channel_maxima *m = &ranges->channel_maxima[i];
        mq_json_object_begin(j);
        mq_json_key(j, "name");
        mq_json_string(j, m->name);
        mq_json_key(j, "max");
        mq_json_array_begin(j);
        for (int64_t c = 0; c < m->channels; c++)
            mq_json_double(j, m->max[c]); /* shortest text that reads back to the same double */
        mq_json_array_end(j);
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
}

int mq_ranges_read_channel_maxima(const struct mq_json_value *root, const char *path,
                                  struct mq_ranges *out, struct mq_error *err)
{
    const struct mq_json_value *list = mq_json_get(root, "channel_maxima");
    if (!list)
        return MQ_OK;
    if (list->type != MQ_JSON_ARRAY)
        return mq_error_set(err, "%s: 'channel_maxima' must be an array", path);
    for (size_t i = 0; i < list->u.array.n; i++) {
        const struct mq_json_value *item = &list->u.array.items[i];
        const struct mq_json_value *name = item->type == MQ_JSON_OBJECT
                                               ? mq_json_get(item, "name") : NULL;
        const struct mq_json_value *max = item->type == MQ_JSON_OBJECT
                                              ? mq_json_get(item, "max") : NULL;
        if (!name || name->type != MQ_JSON_STRING || !max || max->type != MQ_JSON_ARRAY)
            return mq_error_set(err, "%s: channel_maxima entry %zu needs a \"name\" string and "
                                "a \"max\" array", path, i);
        const char *tensor = name->u.string.chars;
        if (mq_ranges_find_channel_maxima(out, tensor))
            return mq_error_set(err, "%s: channel maxima of '%.200s' appear twice", path, tensor);
        size_t n = max->u.array.n;
        if (n < 1 || (int64_t)n > MAX_CHANNELS)
            return mq_error_set(err, "%s: channel maxima of '%.200s': %zu channels (1 to %lld)",
                                path, tensor, n, (long long)MAX_CHANNELS);
        double *values = malloc(n * sizeof *values);
        if (!values)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        for (size_t c = 0; c < n; c++)
            if (mq_json_to_double(&max->u.array.items[c], &values[c]) || !isfinite(values[c]) ||
                values[c] < 0) {
                free(values);
                return mq_error_set(err, "%s: channel maxima of '%.200s': channel %zu is not a "
                                    "finite number >= 0", path, tensor, c);
            }
        int rc = mq_ranges_add_channel_maxima(out, tensor, (int64_t)n, values, err);
        free(values);
        if (rc)
            return rc;
    }
    return MQ_OK;
}
