/* The libc functions the data file wrappers stand in for (datadirs.c),
 * as one list: datadirs.c defines a C wrapper per entry, and each
 * architecture's datadirs_entry.c an entry that passes the bridge's
 * context to it. */
#ifndef CAPSULE_DATADIRS_LIST_H
#define CAPSULE_DATADIRS_LIST_H

#include "elfarch.h"

/* One wrapper per name. The names are those the graphics stack's libraries
 * import (nm -D --undefined-only over glvnd, Mesa, its drivers, the Vulkan
 * loader, libdrm and their dependencies), with their glibc aliases.
 * X(id, libc name, libc version or NULL, wrapper suffix, how many
 * word-sized arguments the function takes before the context: open's
 * optional mode counts). The entries that pass the context are the
 * architecture's (arch/<arch>/datadirs_entry.c). */
#define DATADIRS_FUNCTIONS(X)                                                                      \
    X(F_FOPEN, "fopen", NULL, fopen, 2)                                                            \
    X(F_FOPEN64, "fopen64", NULL, fopen64, 2)                                                      \
    X(F_OPEN, "open", NULL, open, 3)                                                               \
    X(F_OPEN64, "open64", NULL, open64, 3)                                                         \
    X(F_OPEN_2, "__open_2", NULL, open_2, 2)                                                       \
    X(F_OPEN64_2, "__open64_2", NULL, open64_2, 2)                                                 \
    X(F_OPENAT, "openat", NULL, openat, 4)                                                         \
    X(F_OPENAT64, "openat64", NULL, openat64, 4)                                                   \
    X(F_OPENAT_2, "__openat_2", NULL, openat_2, 3)                                                 \
    X(F_OPENAT64_2, "__openat64_2", NULL, openat64_2, 3)                                           \
    X(F_OPENDIR, "opendir", NULL, opendir, 1)                                                      \
    X(F_SCANDIR, "scandir", NULL, scandir, 4)                                                      \
    X(F_SCANDIR64, "scandir64", NULL, scandir64, 4)                                                \
    X(F_STAT, "stat", NULL, stat, 2)                                                               \
    X(F_STAT64, "stat64", NULL, stat64, 2)                                                         \
    X(F_LSTAT, "lstat", NULL, lstat, 2)                                                            \
    X(F_LSTAT64, "lstat64", NULL, lstat64, 2)                                                      \
    X(F_FSTATAT, "fstatat", NULL, fstatat, 4)                                                      \
    X(F_FSTATAT64, "fstatat64", NULL, fstatat64, 4)                                                \
    X(F_XSTAT, "__xstat", CAPSULE_GLIBC_BASE_VERSION, xstat, 3) /* compat only: by version */      \
    X(F_ACCESS, "access", NULL, access, 2)                                                         \
    X(F_REALPATH, "realpath", NULL, realpath, 2)                                                   \
    X(F_REALPATH_CHK, "__realpath_chk", NULL, realpath_chk, 3)                                     \
    X(F_READLINK, "readlink", NULL, readlink, 3)

#endif
