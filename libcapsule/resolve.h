/* Finding a library and its dependencies under a prefix the way ld.so would
 * inside that tree, without ever leaving it. */
#ifndef CAPSULE_RESOLVE_H
#define CAPSULE_RESOLVE_H

#include <stddef.h>

#include "elffile.h"
#include "error.h"

#define CAPSULE_NO_PARENT ((size_t)-1)

typedef struct capsule_dep {
    char *soname;       /* the name it was asked for by */
    char *path;         /* where it is on this machine (prefix + in_prefix) */
    char *in_prefix;    /* absolute path inside the prefix, symlinks resolved */
    char *found_as;     /* the path inside the prefix it was found by, before symlinks */
    capsule_elffile elf;
    size_t parent;      /* the object that first needed it, or CAPSULE_NO_PARENT */
    int state;          /* resolution bookkeeping */
    int loaded;         /* taken as already loaded (capsule_loaded_fn), not searched */
} capsule_dep;

/* A candidate the search tried and passed over (no such file, another
 * architecture, malformed): a file appearing or changing there would
 * change the result (plancache.c checks them). */
typedef struct capsule_probe {
    char *path;          /* host path as tried: prefix + the path inside it */
    capsule_stamp stamp; /* not present: there was no such file */
} capsule_probe;

typedef struct capsule_depset {
    capsule_dep *deps;
    size_t n, cap;
    size_t *order;      /* leaves first: every object after its dependencies */
    size_t n_order;
    capsule_stamp ldcache; /* stat() of prefix/etc/ld.so.cache when resolved */
    capsule_probe *probes;
    size_t n_probes, probe_cap;
} capsule_depset;

/* 1 for the glibc family (and ld.so), which is never taken from a prefix. */
CAPSULE_HIDDEN int capsule_is_glibc_family(const char *soname);

/* Resolves `path` (absolute, inside the prefix) to a host path, following
 * symlinks by hand: absolute targets are re-rooted, ".." stops at the
 * prefix's root. out gets prefix + the resolved path; in_prefix (optional)
 * the resolved path alone. */
CAPSULE_HIDDEN int capsule_path_in_prefix(const char *prefix, const char *path, char *out,
                                          size_t out_size, char *in_prefix, size_t in_size);

/* Resolves roots[0..n_roots) and everything they need (except the glibc
 * family and `exclude`) under prefix. */
CAPSULE_HIDDEN int capsule_resolve(const char *prefix, const char *const *roots, size_t n_roots,
                                   const char *const *exclude, capsule_depset *out);
/* The host path of an object already loaded whose DT_SONAME is soname,
 * copied to out: 0 when there is one. */
typedef int (*capsule_loaded_fn)(void *ctx, const char *soname, char *out, size_t size);

/* Resolves one root as `requester` (an absolute path inside the prefix, or
 * NULL) would find it: with its DT_RPATH/DT_RUNPATH and $ORIGIN. A root
 * containing '/' is a path inside the prefix. A dependency `loaded` (when
 * given) knows by soname is taken as it is, its own dependencies not
 * searched: ld.so matches loaded objects before searching any directory. */
CAPSULE_HIDDEN int capsule_resolve_from(const char *prefix, const char *root,
                                        const char *requester, const char *const *exclude,
                                        capsule_loaded_fn loaded, void *ctx,
                                        capsule_depset *out);
/* An object already loaded from the prefix that asks for a library: what
 * the resolver reads of the requester's file, taken from memory instead. */
typedef struct capsule_requester {
    const char *path;      /* its host path, symlinks resolved (prefix + in_prefix) */
    const char *in_prefix; /* the same inside the prefix */
    const char *soname, *rpath, *runpath; /* its DT_SONAME ..., or NULL */
    const char *const *needed; /* its DT_NEEDED, n_needed of them */
    size_t n_needed;
} capsule_requester;
/* capsule_resolve_from for a requester described by `requester`. */
CAPSULE_HIDDEN int capsule_resolve_loaded_from(const char *prefix, const char *root,
                                               const capsule_requester *requester,
                                               const char *const *exclude,
                                               capsule_loaded_fn loaded, void *ctx,
                                               capsule_depset *out);
CAPSULE_HIDDEN void capsule_depset_free(capsule_depset *set);
/* Expands $ORIGIN, $LIB and $PLATFORM in entry[0..len); -1 when it uses an
 * unknown token or does not fit. */
CAPSULE_HIDDEN int capsule_expand_search_entry(const char *entry, size_t len, const char *origin,
                                               char *out, size_t size);
/* Index of the object resolved for `soname`, or CAPSULE_NO_PARENT. */
CAPSULE_HIDDEN size_t capsule_depset_find(const capsule_depset *set, const char *soname);

#endif
