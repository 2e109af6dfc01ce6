/* Whole-file reads with limits, paths, and atomic writes. */
#ifndef MQ_FILEIO_H
#define MQ_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

/* Reads a regular file of at most max_bytes into a malloc'd buffer. */
int mq_file_read(const char *path, uint64_t max_bytes, uint8_t **data, size_t *size,
                 struct mq_error *err);
/* Reads `length` bytes at `offset`; the file must be long enough. */
int mq_file_read_range(const char *path, uint64_t offset, uint64_t length, uint8_t *dst,
                       struct mq_error *err);

/* malloc'd folder part of a path ("." when there is none). */
char *mq_path_dirname(const char *path);
/* malloc'd "dir/name". */
char *mq_path_join(const char *dir, const char *name);
/* Creates the folder `path` and any missing parents, like `mkdir -p`; an existing folder is
   fine, anything else in the way is an error naming it. */
int mq_path_make_dirs(const char *path, struct mq_error *err);

/*
 * Atomic output: mq_atomic_open creates a hidden temporary file beside `path`;
 * write to file->fp; mq_atomic_commit flushes, fsyncs and renames it over
 * `path`; mq_atomic_abort removes it.  Exactly one of commit/abort must follow.
 */
struct mq_atomic_file {
    FILE *fp;
    char *final_path;
    char *temp_path;
};
int mq_atomic_open(struct mq_atomic_file *file, const char *path, struct mq_error *err);
int mq_atomic_commit(struct mq_atomic_file *file, struct mq_error *err);
void mq_atomic_abort(struct mq_atomic_file *file);
/* Writes a whole buffer atomically. */
int mq_file_write_atomic(const char *path, const void *data, size_t size, struct mq_error *err);

/*
 * Temporary files still open, removed by mq_atomic_cleanup_all (called from a
 * signal handler on SIGINT/SIGTERM: it only uses unlink).
 */
void mq_atomic_cleanup_all(void);

#endif
