/* Listing a calibration folder: its entries by kind, each in natural order. */
#include "calib/folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib/image.h"
#include "util/fileio.h"
#include "util/natural_sort.h"

/* ---- natural order --------------------------------------------------------------------- */

/* Natural order, and bytewise between names it calls equal ("7", "007"): readdir order must
   never decide which sample comes first. */
static int compare_natural_ptr(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int c = mq_natural_compare(x, y);
    return c ? c : strcmp(x, y);
}

void mq_calib_listing_free(struct listing *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int listing_add(struct listing *l, const char *name)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **bigger = realloc(l->names, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return MQ_ERR_MEMORY;
        l->names = bigger;
        l->cap = cap;
    }
    l->names[l->n] = strdup(name);
    if (!l->names[l->n])
        return MQ_ERR_MEMORY;
    l->n++;
    return MQ_OK;
}

int mq_calib_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

void mq_calib_folder_free(struct folder *f)
{
    mq_calib_listing_free(&f->dirs);
    mq_calib_listing_free(&f->npz);
    mq_calib_listing_free(&f->npy);
    mq_calib_listing_free(&f->pb_inputs);
    mq_calib_listing_free(&f->images);
    mq_calib_listing_free(&f->wavs);
    mq_calib_listing_free(&f->other);
}

int mq_calib_folder_list(const char *dir, struct folder *f, struct mq_error *err)
{
    memset(f, 0, sizeof *f);
    DIR *d = opendir(dir);
    if (!d)
        return mq_error_set(err, "%s: cannot open the calibration folder: %s", dir,
                            strerror(errno));
    int rc = MQ_OK;
    struct dirent *e;
    while (rc == MQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = mq_path_join(dir, e->d_name);
        if (!path) {
            rc = MQ_ERR_MEMORY;
            break;
        }
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = listing_add(&f->dirs, e->d_name);
            else if (S_ISREG(st.st_mode) && mq_calib_ends_with(e->d_name, ".npz"))
                rc = listing_add(&f->npz, e->d_name);
            else if (S_ISREG(st.st_mode) && mq_calib_ends_with(e->d_name, ".npy"))
                rc = listing_add(&f->npy, e->d_name);
            else if (S_ISREG(st.st_mode) && mq_calib_ends_with(e->d_name, ".pb") &&
                     strncmp(e->d_name, "input_", 6) == 0)
                rc = listing_add(&f->pb_inputs, e->d_name);
            else if (S_ISREG(st.st_mode) && mq_calib_ends_with(e->d_name, ".pb"))
                ; /* output_K.pb and other tensors beside the inputs */
            else if (S_ISREG(st.st_mode) && mq_image_kind_of_name(e->d_name) != MQ_IMAGE_NONE)
                rc = listing_add(&f->images, e->d_name);
            else if (S_ISREG(st.st_mode) && (mq_calib_ends_with(e->d_name, ".wav") ||
                                             mq_calib_ends_with(e->d_name, ".WAV")))
                rc = listing_add(&f->wavs, e->d_name);
            else if (S_ISREG(st.st_mode))
                rc = listing_add(&f->other, e->d_name);
        }
        free(path);
    }
    closedir(d);
    if (rc) {
        mq_calib_folder_free(f);
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory listing the folder", dir);
    }
    struct listing *all[7] = {&f->dirs, &f->npz, &f->npy, &f->pb_inputs, &f->images, &f->wavs,
                              &f->other};
    for (int i = 0; i < 7; i++)
        if (all[i]->n > 1)
            qsort(all[i]->names, (size_t)all[i]->n, sizeof *all[i]->names, compare_natural_ptr);
    return MQ_OK;
}
