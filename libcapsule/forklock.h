/* fork() and libcapsule's locks: every lock is taken around fork(), outer
 * locks first, so that the child never starts with one held by a thread it
 * does not have. Each lock registers with its rank in the one order the
 * code nests them in. */
#ifndef CAPSULE_FORKLOCK_H
#define CAPSULE_FORKLOCK_H

#include <pthread.h>

#include "error.h"

enum capsule_lock_rank {
    CAPSULE_LOCK_INIT,       /* shim.c: set-ups (inside ld.so's load lock) */
    CAPSULE_LOCK_WRAP,       /* wrap_dlopen.c: installing the dl* policy */
    CAPSULE_LOCK_REGISTRY,   /* namespace.c: the namespaces */
    CAPSULE_LOCK_NAMESPACE,  /* namespace.c: one namespace's lists */
    CAPSULE_LOCK_COPY_APPLY, /* datacopy.c: pointing slots at the copies */
    CAPSULE_LOCK_COPIES,     /* datacopy.c: the list of copies */
    CAPSULE_LOCK_PASS,       /* reloc.c: the relocation pass */
    CAPSULE_LOCK_RELRO,      /* reloc.c: writing under RELRO */
    CAPSULE_LOCK_NSMAP,      /* nsmap.c */
    CAPSULE_LOCK_OBJECTS,    /* objects.c: the records */
    CAPSULE_LOCK_IMAGES,     /* placeholder.c: the images */
    CAPSULE_LOCK_REUSE,      /* reuse.c: remembered resolutions */
    CAPSULE_LOCK_LDCACHE,    /* resolve.c: the prefixes' ld.so.cache */
};

/* Registers lock (which lives as long as the process) at rank. */
CAPSULE_HIDDEN void capsule_forklock_add(pthread_mutex_t *lock, enum capsule_lock_rank rank);

#endif
