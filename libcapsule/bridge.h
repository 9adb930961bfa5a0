/* The bridge: a tiny shared object libcapsule writes in memory and loads
 * first into every capsule namespace. Being the namespace's first object,
 * its symbol table is the namespace's global scope: every object that ever
 * enters the namespace (libc included, and before any constructor runs)
 * binds the names it defines to it. Each of its functions is a jump to an
 * address in the default namespace, optionally loading a context pointer
 * into %r10 first (the only thing a callee may assume about the bridge). */
#ifndef CAPSULE_BRIDGE_H
#define CAPSULE_BRIDGE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#include "error.h"

typedef struct capsule_bridge_entry {
    const char *name;
    const void *target;   /* where the function jumps */
    const void *context;  /* loaded into %r10 when non-NULL */
} capsule_bridge_entry;

/* Writes the bridge for entries[0..n) and dlmopen()s it into a new
 * namespace. Returns its handle (and the namespace id) or NULL with an
 * error. */
CAPSULE_HIDDEN void *capsule_bridge_load(const capsule_bridge_entry *entries, size_t n,
                                         Lmid_t *lmid);

#endif
