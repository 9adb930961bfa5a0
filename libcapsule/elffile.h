/* Reading what dependency resolution needs from an ELF file on disk: class,
 * machine and the dynamic section's strings. The file is untrusted. */
#ifndef CAPSULE_ELFFILE_H
#define CAPSULE_ELFFILE_H

#include <stddef.h>

#include "error.h"
#include "mapfile.h"

/* One version the file needs from one of its DT_NEEDED (DT_VERNEED). */
typedef struct capsule_verneed {
    char *file;     /* the soname it needs it from, e.g. "libc.so.6" */
    char *version;  /* e.g. "GLIBC_2.34" */
} capsule_verneed;

typedef struct capsule_elffile {
    char *soname;   /* DT_SONAME or NULL */
    char *rpath;    /* DT_RPATH or NULL */
    char *runpath;  /* DT_RUNPATH or NULL */
    char **needed;  /* DT_NEEDED in order */
    size_t n_needed;
    capsule_verneed *verneed;
    size_t n_verneed;
    capsule_stamp stamp; /* of the file read */
} capsule_elffile;

enum {
    CAPSULE_ELF_OK = 0,
    CAPSULE_ELF_MISSING = 1,     /* no such file */
    CAPSULE_ELF_WRONG_ARCH = 2,  /* a valid ELF of another class or machine */
    CAPSULE_ELF_BAD = -1,        /* unreadable or malformed */
};

/* Fills *out on CAPSULE_ELF_OK; otherwise the error message says why. */
CAPSULE_HIDDEN int capsule_elffile_read(const char *path, capsule_elffile *out);
/* The same for a file already open as fd (closed here); path names it in
 * errors. */
CAPSULE_HIDDEN int capsule_elffile_read_fd(int fd, const char *path, capsule_elffile *out);
CAPSULE_HIDDEN void capsule_elffile_free(capsule_elffile *f);

#endif
