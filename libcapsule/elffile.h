/* Reading what dependency resolution needs from an ELF file on disk: class,
 * machine and the dynamic section's strings. The file is untrusted. */
#ifndef CAPSULE_ELFFILE_H
#define CAPSULE_ELFFILE_H

#include <stddef.h>

#include "error.h"

typedef struct capsule_elffile {
    char *soname;   /* DT_SONAME or NULL */
    char *rpath;    /* DT_RPATH or NULL */
    char *runpath;  /* DT_RUNPATH or NULL */
    char **needed;  /* DT_NEEDED in order */
    size_t n_needed;
} capsule_elffile;

enum {
    CAPSULE_ELF_OK = 0,
    CAPSULE_ELF_MISSING = 1,     /* no such file */
    CAPSULE_ELF_WRONG_ARCH = 2,  /* a valid ELF of another class or machine */
    CAPSULE_ELF_BAD = -1,        /* unreadable or malformed */
};

/* Fills *out on CAPSULE_ELF_OK; otherwise the error message says why. */
CAPSULE_HIDDEN int capsule_elffile_read(const char *path, capsule_elffile *out);
CAPSULE_HIDDEN void capsule_elffile_free(capsule_elffile *f);

/* The version names an object needs from one of its DT_NEEDED files. */
typedef struct capsule_elfneeds {
    char **versions;
    size_t n;
} capsule_elfneeds;

/* Reads path's DT_VERNEED entries for `file` (a soname) into *out (empty
 * when it needs no version of it). */
CAPSULE_HIDDEN int capsule_elffile_needs(const char *path, const char *file,
                                         capsule_elfneeds *out);
CAPSULE_HIDDEN void capsule_elfneeds_free(capsule_elfneeds *n);

#endif
