/* Listing a calibration folder: its entries by kind, each in natural order. */
#ifndef MQ_CALIB_FOLDER_H
#define MQ_CALIB_FOLDER_H

#include "util/error.h"

struct listing {
    char **names;
    int n, cap;
};

/* Entries of a folder by kind; hidden entries are skipped.  pb_inputs: input_K.pb files;
   other .pb files (output_K.pb) are in no list; `other` holds the remaining files. */
struct folder {
    struct listing dirs, npz, npy, pb_inputs, images, wavs, other;
};

void mq_calib_listing_free(struct listing *l);
int mq_calib_folder_list(const char *dir, struct folder *f, struct mq_error *err);
void mq_calib_folder_free(struct folder *f);
/* True when s ends with suffix and is longer than it. */
int mq_calib_ends_with(const char *s, const char *suffix);

#endif
