/* Options shared by the commands that read samples: declared pre-processing, shards. */
#include "cli/sample_args.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/reader.h"
#include "cli/cli.h"

const char mq_cli_preprocess_help[] =
    "Folders of images (JPEG, PNG) or WAV files, declared pre-processing:\n"
    "  --preprocess FILE     the keys below as `key value` lines (# comments)\n"
    "  --image-size WxH      target size (default: the model's input shape)\n"
    "  --resize M            stretch (default), shorter (then --crop center) or\n"
    "                        letterbox (padded with --pad-value, default 0)\n"
    "  --crop center         with --resize shorter: keep the centre\n"
    "  --shorter-side N      with --resize shorter: that side's length before the crop\n"
    "                        (default: the target's; 256 for Resize(256), CenterCrop(224))\n"
    "  --filter F            bilinear (default), bicubic or nearest, as Pillow's\n"
    "  --color C             rgb (default), bgr or gray\n"
    "  --layout L            nchw, nhwc or auto (default: from the input's shape)\n"
    "  --scale S             pixel * S (e.g. 1/255), then - mean, then / std\n"
    "  --mean A,B,C          per output channel (one value: every channel)\n"
    "  --std A,B,C\n"
    "  --sample-rate HZ      resample WAV files to HZ (libsamplerate, best sinc)\n"
    "  --mono                average the channels\n"
    "  --frame N --hop M     cut into frames of N samples every M (default: N)\n"
    "  --pad zero|none       pad the last partial frame with zeros (default) or drop it\n"
    "  --fill NAME=VALUE     a constant for another graph input (a state, a rate);\n"
    "                        free dimensions of it are 1\n"
    "  --carry IN=OUT        a recurrent state: input IN takes output OUT of the\n"
    "                        previous frame of the same file (zeros for the first);\n"
    "                        the frames then run in order on one thread\n";

int mq_cli_preprocess_option(int argc, char **argv, int *i, struct mq_preprocess *pre,
                             const char *command)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    struct mq_error err = {{0}};
    const char *value = NULL;
    int m;
    if ((m = mq_cli_option(argc, argv, i, "preprocess", &value))) {
        if (m < 0) {
            mq_cli_usage_error(command, "--preprocess needs a file");
            return -1;
        }
        int rc = mq_preprocess_load(pre, value, &err);
        if (rc) {
            /* A bad key in the file is the user's file's fault, reported like a bad option. */
            mq_cli_usage_error(command, "%s", err.message);
            return -1;
        }
        return 1;
    }
    if (mq_cli_flag(argv, *i, "mono"))
        return mq_preprocess_set(pre, "mono", "", &err) ? -1 : 1;
    char key[32];
    size_t n = strcspn(arg + 2, "=");
    if (n >= sizeof key)
        return 0;
    memcpy(key, arg + 2, n);
    key[n] = '\0';
    if (strcmp(key, "mono") == 0 || !mq_preprocess_is_key(key))
        return 0;
    if ((m = mq_cli_option(argc, argv, i, key, &value)) < 0) {
        mq_cli_usage_error(command, "--%s needs a value", key);
        return -1;
    }
    if (m == 0)
        return 0;
    if (mq_preprocess_set(pre, key, value, &err)) {
        mq_cli_usage_error(command, "%s", err.message);
        return -1;
    }
    return 1;
}

int mq_cli_parse_shard(const char *s, long long *index, long long *count)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash)
        return -1;
    char k[32];
    if ((size_t)(slash - s) >= sizeof k)
        return -1;
    memcpy(k, s, (size_t)(slash - s));
    k[slash - s] = '\0';
    *index = mq_cli_parse_count(k);
    *count = mq_cli_parse_count(slash + 1);
    return *index < 0 || *count < 1 || *index >= *count ? -1 : 0;
}

void mq_cli_ignored_note(const struct mq_calib_source *source, char *buf, size_t size)
{
    const char *first = NULL;
    int64_t n = source ? mq_calib_source_ignored(source, &first) : 0;
    if (n <= 0)
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, "; %" PRId64 " file%s beside the samples not read (%s%s)", n,
                 n == 1 ? "" : "s", first ? first : "", n > 1 ? ", ..." : "");
}
