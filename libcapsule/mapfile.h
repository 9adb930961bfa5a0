/* Mapping an untrusted file read-only, whole. Fuzz builds (CAPSULE_FUZZING)
 * copy it to the heap instead, so a sanitizer sees reads past its end that an
 * mmap'ed page would silently satisfy. */
#ifndef CAPSULE_MAPFILE_H
#define CAPSULE_MAPFILE_H

#include <stddef.h>

#include "error.h"

/* What tells a file changed: device, inode, size and modification time
 * (present 0: there was no such file). */
typedef struct capsule_stamp {
    unsigned long long dev, ino;
    long long size, mtime_sec, mtime_nsec;
    int present;
} capsule_stamp;

struct stat;

CAPSULE_HIDDEN void capsule_stamp_of(const struct stat *st, capsule_stamp *out);
/* stat(path)'s stamp (following symlinks); not present when it fails. */
CAPSULE_HIDDEN void capsule_stamp_path(const char *path, capsule_stamp *out);
CAPSULE_HIDDEN int capsule_stamp_same(const capsule_stamp *a, const capsule_stamp *b);
/* 1 when stat(path) still gives `then` (absent then and now included). */
CAPSULE_HIDDEN int capsule_stamp_unchanged(const char *path, const capsule_stamp *then);

/* Opens `path` without following a FIFO or device into a blocking or
 * side-effecting open, and maps it if it is a non-empty regular file of at
 * most max_size bytes. Returns 0 with *data and *size set; 1 when the file does not
 * exist; -1 with an error naming path otherwise. */
CAPSULE_HIDDEN int capsule_map_file(const char *path, size_t max_size, const unsigned char **data,
                                    size_t *size);
CAPSULE_HIDDEN void capsule_unmap_file(const unsigned char *data, size_t size);
/* The same checks and results, leaving the file open (*fd, to be closed)
 * for reading only the parts needed: mapping and unmapping a file costs
 * more than a few preads (TLB flushes, page faults). */
CAPSULE_HIDDEN int capsule_open_file(const char *path, size_t max_size, int *fd, size_t *size,
                                     capsule_stamp *stamp);
/* The checks of capsule_open_file on a descriptor already open (closed on
 * failure): 0 with *size (and *stamp, unless NULL) set, -1 with an error
 * naming path. */
CAPSULE_HIDDEN int capsule_check_open_file(int fd, const char *path, size_t max_size,
                                           size_t *size, capsule_stamp *stamp);

#endif
