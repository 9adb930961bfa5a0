#define _GNU_SOURCE
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char *
map_fd(int fd, size_t size)
{
#ifdef CAPSULE_FUZZING
    unsigned char *copy = malloc(size);
    size_t done = 0;

    while (copy && done < size) {
        ssize_t n = pread(fd, copy + done, size - done, (off_t)done);
        if (n <= 0) {
            free(copy);
            return NULL;
        }
        done += (size_t)n;
    }
    return copy;
#else
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    return map == MAP_FAILED ? NULL : map;
#endif
}

void
capsule_stamp_of(const struct stat *st, capsule_stamp *out)
{
    memset(out, 0, sizeof *out);
    out->dev = (unsigned long long)st->st_dev;
    out->ino = (unsigned long long)st->st_ino;
    out->size = (long long)st->st_size;
    out->mtime_sec = (long long)st->st_mtim.tv_sec;
    out->mtime_nsec = (long long)st->st_mtim.tv_nsec;
    out->present = 1;
}

void
capsule_stamp_path(const char *path, capsule_stamp *out)
{
    struct stat st;

    memset(out, 0, sizeof *out);
    if (stat(path, &st) == 0)
        capsule_stamp_of(&st, out);
}

int
capsule_stamp_same(const capsule_stamp *a, const capsule_stamp *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

int
capsule_stamp_unchanged(const char *path, const capsule_stamp *then)
{
    capsule_stamp now;

    capsule_stamp_path(path, &now);
    return capsule_stamp_same(&now, then);
}

int
capsule_open_file(const char *path, size_t max_size, int *fd_out, size_t *size,
                  capsule_stamp *stamp)
{
    int fd;

    *fd_out = -1;
    *size = 0;
    /* O_NONBLOCK: a FIFO planted under the prefix must not hang start-up
     * (an open for reading blocks until a writer appears). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return 1;
        return capsule_error_set("%s: %s", path, strerror(err));
    }
    if (capsule_check_open_file(fd, path, max_size, size, stamp) != 0)
        return -1;
    *fd_out = fd;
    return 0;
}

int
capsule_check_open_file(int fd, const char *path, size_t max_size, size_t *size,
                        capsule_stamp *stamp)
{
    struct stat st;

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return capsule_error_set("%s: not a regular file", path);
    }
    if (st.st_size <= 0 || (unsigned long long)st.st_size > max_size) {
        close(fd);
        return capsule_error_set("%s: %s", path, st.st_size <= 0 ? "empty file" : "file too large");
    }
    *size = (size_t)st.st_size;
    if (stamp)
        capsule_stamp_of(&st, stamp);
    return 0;
}

int
capsule_map_file(const char *path, size_t max_size, const unsigned char **data, size_t *size)
{
    int fd, rc = capsule_open_file(path, max_size, &fd, size, NULL);

    *data = NULL;
    if (rc != 0)
        return rc;
    *data = map_fd(fd, *size);
    int err = errno;
    close(fd);
    if (!*data) {
        *size = 0;
        return capsule_error_set("%s: cannot read: %s", path, strerror(err));
    }
    return 0;
}

void
capsule_unmap_file(const unsigned char *data, size_t size)
{
    if (!data)
        return;
#ifdef CAPSULE_FUZZING
    (void)size;
    free((void *)data);
#else
    munmap((void *)data, size);
#endif
}
