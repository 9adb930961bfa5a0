/* One record per loaded object libcapsule deals with, in any namespace.
 *
 * A record holds what libcapsule knows of an object for as long as it
 * needs it: its dynamic section decoded once (dynobj.h), what it is to the
 * capsule, the reference libcapsule holds on it, and the relocation pass's
 * progress on it. Objects libcapsule loads into a capsule (from a prefix,
 * placeholders, bridges) are recorded when loaded and kept for good, since
 * libcapsule never drops its reference; objects of the default namespace
 * are recorded by the relocation pass and dropped when they are unloaded.
 * The resolver's dependency sets (resolve.h) describe files to load, not
 * loaded objects; glibc's link_map is the key. */
#ifndef CAPSULE_OBJECTS_H
#define CAPSULE_OBJECTS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>

#include "dynobj.h"
#include "error.h"

typedef enum {
    CAPSULE_OBJECT_PROGRAM,     /* an object of the default namespace */
    CAPSULE_OBJECT_PREFIX,      /* loaded from a prefix into a capsule */
    CAPSULE_OBJECT_PLACEHOLDER, /* a glibc library's or a shared soname's */
    CAPSULE_OBJECT_BRIDGE,
} capsule_object_kind;

typedef struct capsule_object {
    capsule_object_kind kind;
    Lmid_t lmid;
    ElfW(Addr) key;            /* its dynamic section's address */
    char *name;                /* l_name, or dlpi_name */
    capsule_dynobj dyn;
    const struct link_map *map; /* for capsule objects */
    void *handle;              /* libcapsule's reference, or NULL */
    const char *label;         /* a placeholder's, e.g. "glibc: libc.so.6" */
    /* The relocation pass, for objects of the default namespace: policies
     * [0, n_applied) are done; a slot the pass wrote, to tell an object
     * unloaded and loaded again at the same place. */
    size_t n_applied;
    ElfW(Addr) sentinel_where, sentinel_value;
    int seen;
    struct capsule_object *next;
} capsule_object;

/* Records an object libcapsule loaded into namespace lmid and keeps its
 * reference `handle` for good; `label` (static or kept) for placeholders.
 * Returns the record (an existing one when the object is recorded
 * already), or NULL with an error. */
CAPSULE_HIDDEN capsule_object *capsule_objects_add(void *handle, Lmid_t lmid,
                                                   capsule_object_kind kind, const char *label);
/* The record of the capsule object loaded in lmid from path, or NULL. */
CAPSULE_HIDDEN capsule_object *capsule_objects_by_path(Lmid_t lmid, const char *path);
/* The label of a placeholder's link map, or NULL. */
CAPSULE_HIDDEN const char *capsule_objects_label(const struct link_map *map);

/* ---- the default namespace, for the relocation pass ----
 * Called only with the pass's lock held, from inside dl_iterate_phdr
 * (which keeps objects from being unloaded under it). */

/* The record of the object `info` describes, made when missing.
 * `recheck`: objects were unloaded since the last pass, so a record that
 * matches may describe an object that is gone: it is decoded again and
 * compared, and replaced when another object now lives there. */
CAPSULE_HIDDEN capsule_object *capsule_objects_program(const struct dl_phdr_info *info,
                                                       const ElfW(Dyn) *dyn, int recheck);
/* Marks every default-namespace record unseen (seen = 0), before a walk. */
CAPSULE_HIDDEN void capsule_objects_unsee(void);
/* Drops the default-namespace records the last walk did not see. */
CAPSULE_HIDDEN void capsule_objects_prune(void);

#endif
