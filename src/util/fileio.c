/* Whole-file reads with limits, path helpers, and atomic writes (see fileio.h). */
#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mq_file_read(const char *path, uint64_t max_bytes, uint8_t **data, size_t *size,
                 struct mq_error *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mq_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return mq_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mq_error_set(err, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return mq_error_set(err, "%s: file is %" PRIu64 " bytes, more than the %" PRIu64
                            " this reader accepts", path, (uint64_t)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return mq_error_set(err, "%s: read failed after %zu of %zu bytes%s%s", path, got, n,
                                e ? ": " : "", e ? strerror(e) : "");
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = n;
    return MQ_OK;
}

int mq_file_read_range(const char *path, uint64_t offset, uint64_t length, uint8_t *dst,
                       struct mq_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mq_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mq_error_set(err, "%s: not a regular file", path);
    }
    uint64_t file_size = (uint64_t)st.st_size;
    if (offset > file_size || length > file_size - offset) {
        close(fd);
        return mq_error_set(err, "%s: needs bytes %" PRIu64 "..%" PRIu64 " but the file has %"
                            PRIu64, path, offset, offset + length, file_size);
    }
    uint64_t got = 0;
    while (got < length) {
        ssize_t r = pread(fd, dst + got, (size_t)(length - got), (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return mq_error_set(err, "%s: read failed at offset %" PRIu64, path, offset + got);
        }
        got += (uint64_t)r;
    }
    close(fd);
    return MQ_OK;
}

char *mq_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

char *mq_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *out = malloc(a + b + 2);
    if (!out)
        return NULL;
    memcpy(out, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/')
        out[k++] = '/';
    memcpy(out + k, name, b + 1);
    return out;
}

int mq_path_make_dirs(const char *path, struct mq_error *err)
{
    if (!*path)
        return mq_error_set(err, "an empty folder name");
    char *p = strdup(path);
    if (!p)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int rc = MQ_OK;
    /* Each prefix ending before a '/', then the whole path. */
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = mq_error_set(err, "%s: cannot create folder: %s", p, strerror(errno));
        else if (stat(p, &st) != 0)
            rc = mq_error_set(err, "%s: %s", p, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            rc = mq_error_set(err, "%s: not a folder", p);
        *c = saved;
        if (rc || !saved)
            break;
    }
    free(p);
    return rc;
}

/* Temporary paths open right now, for the signal handler. Small fixed table: no allocation. */
#define MAX_OPEN_TEMPS 16
static char *volatile open_temps[MAX_OPEN_TEMPS];

static void temp_register(char *path)
{
    for (int i = 0; i < MAX_OPEN_TEMPS; i++)
        if (!open_temps[i]) {
            open_temps[i] = path;
            return;
        }
}

static void temp_unregister(const char *path)
{
    for (int i = 0; i < MAX_OPEN_TEMPS; i++)
        if (open_temps[i] == path)
            open_temps[i] = NULL;
}

void mq_atomic_cleanup_all(void)
{
    for (int i = 0; i < MAX_OPEN_TEMPS; i++)
        if (open_temps[i])
            unlink(open_temps[i]);
}

int mq_atomic_open(struct mq_atomic_file *file, const char *path, struct mq_error *err)
{
    memset(file, 0, sizeof *file);
    char *dir = mq_path_dirname(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!dir)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (!*base) {
        free(dir);
        return mq_error_set(err, "%s: output path names a folder, expected a file", path);
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int e = errno;
        free(dir);
        return mq_error_set(err, "%s: output folder does not exist or is not a folder%s%s", path,
                            e ? ": " : "", e ? strerror(e) : "");
    }
    size_t n = strlen(dir) + strlen(base) + 32;
    char *temp = malloc(n);
    if (!temp) {
        free(dir);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    snprintf(temp, n, "%s/.%s.tmp-XXXXXX", dir, base);
    free(dir);
    int fd = mkstemp(temp);
    if (fd < 0) {
        int e = errno;
        free(temp);
        return mq_error_set(err, "%s: cannot create a file in the output folder: %s", path,
                            strerror(e));
    }
    temp_register(temp);
    file->fp = fdopen(fd, "wb");
    if (!file->fp) {
        temp_unregister(temp);
        close(fd);
        unlink(temp);
        free(temp);
        return mq_error_set(err, "%s: cannot open the temporary file", path);
    }
    file->temp_path = temp;
    file->final_path = strdup(path);
    if (!file->final_path) {
        mq_atomic_abort(file);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    return MQ_OK;
}

void mq_atomic_abort(struct mq_atomic_file *file)
{
    if (file->fp)
        fclose(file->fp);
    if (file->temp_path) {
        unlink(file->temp_path);
        temp_unregister(file->temp_path);
    }
    free(file->temp_path);
    free(file->final_path);
    memset(file, 0, sizeof *file);
}

int mq_atomic_commit(struct mq_atomic_file *file, struct mq_error *err)
{
    int failed = fflush(file->fp) != 0 || ferror(file->fp) || fsync(fileno(file->fp)) != 0;
    int e = errno;
    if (fclose(file->fp) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    file->fp = NULL;
    if (failed) {
        int rc = mq_error_set(err, "%s: write failed: %s", file->final_path, strerror(e));
        mq_atomic_abort(file);
        return rc;
    }
    /* Keep the permissions a normal file would get rather than mkstemp's 0600. */
    mode_t mask = umask(0);
    umask(mask);
    chmod(file->temp_path, 0666 & ~mask);
    if (rename(file->temp_path, file->final_path) != 0) {
        int rc = mq_error_set(err, "%s: cannot replace the file: %s", file->final_path,
                              strerror(errno));
        mq_atomic_abort(file);
        return rc;
    }
    temp_unregister(file->temp_path);
    /* fsync the folder so the rename itself is durable. */
    char *dir = mq_path_dirname(file->final_path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(file->temp_path);
    free(file->final_path);
    memset(file, 0, sizeof *file);
    return MQ_OK;
}

int mq_file_write_atomic(const char *path, const void *data, size_t size, struct mq_error *err)
{
    struct mq_atomic_file f;
    if (mq_atomic_open(&f, path, err))
        return MQ_ERR;
    if (size && fwrite(data, 1, size, f.fp) != size) {
        int rc = mq_error_set(err, "%s: write failed: %s", path, strerror(errno));
        mq_atomic_abort(&f);
        return rc;
    }
    return mq_atomic_commit(&f, err);
}
