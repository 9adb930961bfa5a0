/* One dlmopen namespace per prefix, shared by every shim using that prefix.
 * Its first object is the bridge (bridge.h), whose entries the layer above
 * chooses: every object in the namespace binds those names to it first.
 * Then comes the placeholder of libc.so.6 (placeholder.h): the capsule runs
 * on the program's one glibc, and every glibc library an object of the
 * namespace needs is a placeholder of the program's copy, placed before the
 * object is loaded. */
#ifndef CAPSULE_NAMESPACE_H
#define CAPSULE_NAMESPACE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#include "bridge.h"
#include "error.h"
#include "resolve.h"

typedef struct capsule_ns capsule_ns;

/* Fills out[0..max) with the bridge's entries for namespace ns; returns
 * how many. */
typedef size_t (*capsule_bridge_fill_fn)(capsule_ns *ns, capsule_bridge_entry *out, size_t max);

/* The namespace of `prefix`, created on first use: the bridge with the
 * entries `fill` gives, then libc's placeholder. */
CAPSULE_HIDDEN int capsule_ns_open(const char *prefix, capsule_bridge_fill_fn fill,
                                   capsule_ns **out);
/* Loads every object of `set` (leaves first, by full path) into the
 * namespace, after the placeholders of the glibc libraries they need;
 * `exclude` joins the namespace's set of sonames never taken from the
 * prefix. */
CAPSULE_HIDDEN int capsule_ns_load(capsule_ns *ns, const capsule_depset *set,
                                   const char *const *exclude);
/* For a dlopen inside: when set holds libgcc_s.so.1 and the namespace has
 * none yet, decides as capsule_ns_load does whether the program's replaces
 * the prefix's (unwinder.h). Returns 1 when the namespace shares it (set
 * must then be resolved again: libgcc_s is excluded now), 0 when not, -1
 * with an error. */
CAPSULE_HIDDEN int capsule_ns_share_unwinder(capsule_ns *ns, const capsule_depset *set);
/* The namespace of `prefix` (canonical) when there is one, else NULL.
 * Takes no lock: the registry only grows and is published with release
 * semantics. */
CAPSULE_HIDDEN capsule_ns *capsule_ns_find(const char *prefix);
/* The sonames a shim without a `share` list shares when the program has
 * them loaded (NULL-terminated). */
CAPSULE_HIDDEN const char *const *capsule_ns_default_share(void);
/* The glibc version check capsule_ns_place_needed makes first, against the
 * glibc libraries the program has loaded only (one it has not is not
 * checked); loads nothing and calls nothing in ld.so but
 * dl_iterate_phdr. 0, or -1 with the same error. */
CAPSULE_HIDDEN int capsule_ns_check_glibc_loaded(const capsule_depset *set);
/* Places the glibc libraries the objects of `set` need (their DT_NEEDED). */
CAPSULE_HIDDEN int capsule_ns_place_needed(capsule_ns *ns, const capsule_depset *set);
/* For objects ld.so loads from the host by itself (excluded sonames):
 * places every glibc library the program has. */
CAPSULE_HIDDEN int capsule_ns_excluded_host(capsule_ns *ns);
/* dlopen of a glibc library inside: a new reference on its placeholder
 * (placed now if needed), or NULL with dlerror() saying why. */
CAPSULE_HIDDEN void *capsule_ns_glibc(capsule_ns *ns, const char *file, int flags);
/* Puts in the namespace a placeholder for each `share` soname not placed
 * yet (share.h): those bind to the program's copy and are never taken from
 * the prefix. A soname the program cannot load stays an ordinary one
 * (traced under ns). share NULL: the default list (libX11, libxcb,
 * libwayland-client), each shared when the program has it loaded. */
CAPSULE_HIDDEN int capsule_ns_share(capsule_ns *ns, const char *const *share);
/* 1 when soname (or a path's file name) is shared in this namespace. */
CAPSULE_HIDDEN int capsule_ns_shared(capsule_ns *ns, const char *soname);
/* A NULL-terminated array: exclude, then the namespace's shared sonames
 * (free the array only); NULL when out of memory. */
CAPSULE_HIDDEN char **capsule_ns_with_shared(capsule_ns *ns, const char *const *exclude);
CAPSULE_HIDDEN Lmid_t capsule_ns_lmid(const capsule_ns *ns);
CAPSULE_HIDDEN const char *capsule_ns_prefix(const capsule_ns *ns);
/* The bridge's handle: what dlopen(NULL) inside the capsule returns. */
CAPSULE_HIDDEN void *capsule_ns_bridge(const capsule_ns *ns);
/* 1 when soname is never taken from the prefix (glibc family, exclude). */
CAPSULE_HIDDEN int capsule_ns_excluded(capsule_ns *ns, const char *soname);

/* A NULL-terminated copy of the excluded sonames (free the array only). */
CAPSULE_HIDDEN char **capsule_ns_exclude_list(capsule_ns *ns);

/* The capsule's own "global scope", searched by dlsym(RTLD_DEFAULT) from
 * inside after the bridge: the shims' targets (handles held for the life of
 * the process), then what was dlopen()ed with RTLD_GLOBAL inside, in order,
 * by path and without a reference, so that its last dlclose still unloads
 * it as it would without capsules: a lookup opens it with RTLD_NOLOAD and
 * skips it once it is gone. Entries are never removed. */
typedef struct {
    void *handle;     /* a shim's target, or NULL */
    const char *path; /* an RTLD_GLOBAL object's name, or NULL */
} capsule_scope_entry;

CAPSULE_HIDDEN void capsule_ns_scope_add(capsule_ns *ns, void *handle);
CAPSULE_HIDDEN void capsule_ns_scope_add_path(capsule_ns *ns, const char *path);
CAPSULE_HIDDEN size_t capsule_ns_scope(capsule_ns *ns, capsule_scope_entry *out, size_t max);

/* Calls fn for every object of the namespace (except the bridge), in load
 * order, until fn returns non-zero: dl_iterate_phdr's view of it, program
 * headers from ld.so itself (never read from an untrusted object's memory).
 * Runs under ld.so's write lock on the lists of loaded objects. */
struct dl_phdr_info;
CAPSULE_HIDDEN int capsule_ns_foreach(capsule_ns *ns, int (*fn)(struct dl_phdr_info *, void *),
                                      void *data);

/* The file name of the object in the namespace whose DT_SONAME is soname
 * (what ld.so matches a bare name against before searching): 0 and out
 * filled when there is one. */
/* dlopen(soname, flags | RTLD_NOLOAD) in the program, and dlmopen of the
 * namespace's, asked only when a loaded object has that DT_SONAME: ld.so
 * would otherwise search the whole path and open the file it finds just to
 * compare it with the loaded objects. NULL when none. */
CAPSULE_HIDDEN void *capsule_program_noload(const char *soname, int flags);
CAPSULE_HIDDEN void *capsule_ns_noload(capsule_ns *ns, const char *soname, int flags);
CAPSULE_HIDDEN int capsule_ns_find_soname(capsule_ns *ns, const char *soname, char *out,
                                          size_t size);


#endif
