/* One dlmopen namespace per prefix, shared by every shim using that prefix. */
#ifndef CAPSULE_NAMESPACE_H
#define CAPSULE_NAMESPACE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#include "error.h"
#include "resolve.h"

typedef struct capsule_ns capsule_ns;

/* Loads every object of `set` (leaves first, by full path) into the
 * namespace of `prefix`, creating it on first use. */
CAPSULE_HIDDEN int capsule_ns_load(const char *prefix, const capsule_depset *set,
                                   capsule_ns **out);
/* The dlmopen handle of an object loaded from `path`, or NULL. */
CAPSULE_HIDDEN void *capsule_ns_handle(capsule_ns *ns, const char *path);
CAPSULE_HIDDEN Lmid_t capsule_ns_lmid(const capsule_ns *ns);

#endif
