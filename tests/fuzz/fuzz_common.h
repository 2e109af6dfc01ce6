/*
 * Shared by the libFuzzer targets that need files: one private temporary
 * folder per process (removed at exit), so a target never reads or writes
 * anything outside it, and a memory cap so a hostile header cannot make the
 * fuzzer itself run out of memory before the code under test refuses it.
 */
#ifndef MQ_FUZZ_COMMON_H
#define MQ_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tensor.h"

/* Well below libFuzzer's -rss_limit_mb: the code under test must refuse first. */
#define FUZZ_MEMORY_CAP ((uint64_t)512 << 20)

static char fuzz_dir[64];

/* Removes the folder's entries (one level: targets create no subfolders that stay). */
static inline void fuzz_dir_empty(void)
{
    DIR *d = opendir(fuzz_dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
}

static inline void fuzz_dir_remove(void)
{
    fuzz_dir_empty();
    rmdir(fuzz_dir);
}

/* Creates the folder once; aborts (a broken set-up, not a finding) when it cannot. */
static inline const char *fuzz_dir_get(void)
{
    if (fuzz_dir[0])
        return fuzz_dir;
    /* Memory-backed when possible: on a disk, rewriting the same file each run (and the
       fsync of atomic saves) makes the targets wait on I/O instead of fuzzing. */
    const char *base = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/mq-fuzz-XXXXXX",
             base && *base && strlen(base) < 40 ? base : "/tmp");
    if (!mkdtemp(fuzz_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(fuzz_dir_remove);
    mq_memory_set_limit(FUZZ_MEMORY_CAP);
    return fuzz_dir;
}

/* Writes data to dir/name (replacing it); returns the path in a static buffer. */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir_get(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
    return path;
}

#endif
