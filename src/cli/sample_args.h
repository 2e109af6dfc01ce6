/*
 * Command-line options shared by every command that reads samples: the
 * declared pre-processing of image and WAV folders (--preprocess FILE,
 * --image-size, --resize, ...; calib/preprocess.h) and, for calibrate,
 * --shard K/N.
 */
#ifndef MQ_CLI_SAMPLE_ARGS_H
#define MQ_CLI_SAMPLE_ARGS_H

#include <stddef.h>

#include "calib/preprocess.h"

/* The help text of the pre-processing options, for --help screens. */
extern const char mq_cli_preprocess_help[];

/*
 * If argv[*i] is a pre-processing option, applies it, advances *i past its
 * value and returns 1; returns 0 for other arguments; on a bad value prints a
 * usage error for `command` and returns -1.
 */
int mq_cli_preprocess_option(int argc, char **argv, int *i, struct mq_preprocess *pre,
                             const char *command);

/* "K/N" with 0 <= K < N; -1 when malformed. */
int mq_cli_parse_shard(const char *s, long long *index, long long *count);

/* "; 2 files beside the samples not read (labels.npy, ...)" or "" for summaries. */
struct mq_calib_source;
void mq_cli_ignored_note(const struct mq_calib_source *source, char *buf, size_t size);

#endif
