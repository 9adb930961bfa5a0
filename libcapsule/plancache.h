/* Resolutions kept across processes: a program through capsules resolves
 * the same trees at every start, and each resolution opens and reads every
 * object of the prefix before ld.so opens it again. A successful one is
 * written to the user's cache directory and taken again, in this process
 * or a later one, while stat() shows nothing it depended on changed
 * (plancache.c says what is checked and what staleness is accepted). */
#ifndef CAPSULE_PLANCACHE_H
#define CAPSULE_PLANCACHE_H

#include <limits.h>
#include <stddef.h>

#include "error.h"
#include "resolve.h"

typedef struct capsule_plankey {
    char *text;               /* every input of the resolution, NUL-separated */
    size_t len;
    char file[PATH_MAX];      /* where it is kept */
} capsule_plankey;

/* 0 with *key set (free it with capsule_plankey_free) when resolutions are
 * kept in this process; -1 when not (turned off, no cache directory, a
 * set-user-ID program). The inputs are resolve()'s. */
CAPSULE_HIDDEN int capsule_plankey_make(capsule_plankey *key, const char *prefix,
                                        const char *const *roots, size_t n_roots,
                                        const char *requester,
                                        const capsule_requester *loaded_requester,
                                        const char *const *exclude, int sees_loaded);
CAPSULE_HIDDEN void capsule_plankey_free(capsule_plankey *key);

/* 0 with *out set when a resolution is kept for key and still holds
 * (`loaded` as for capsule_resolve_from: what is loaded now must be what
 * the resolution saw); 1 with *out empty otherwise. */
CAPSULE_HIDDEN int capsule_plancache_take(const capsule_plankey *key, const char *prefix,
                                          const char *const *roots, size_t n_roots,
                                          capsule_loaded_fn loaded, void *ctx,
                                          capsule_depset *out);

/* Keeps a successful resolution for key; failing to is not an error. */
CAPSULE_HIDDEN void capsule_plancache_keep(const capsule_plankey *key, const char *prefix,
                                           const capsule_depset *set);

#endif
