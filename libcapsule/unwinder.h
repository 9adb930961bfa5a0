/* The unwinder: one per process, the program's libgcc_s.so.1.
 *
 * A C++ exception (or a thread's cancellation, pthread_exit) that crosses
 * the boundary is unwound by the libgcc_s of the side that raised it, over
 * frames whose personality routines (each side's libstdc++) call back into
 * their own libgcc_s with the raising unwinder's context: a second copy of
 * libgcc_s has never set up its register table (_Unwind_SetGR aborts).
 * With one libgcc_s every frame is unwound by it, whichever libstdc++ owns
 * the frame; libstdc++ itself can stay private to the capsule. */
#ifndef CAPSULE_UNWINDER_H
#define CAPSULE_UNWINDER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
/* One exception state per thread: each libstdc++ keeps the thread's caught
 * exceptions and its count of uncaught ones (__cxa_eh_globals), and the
 * side that throws counts one up where the side that catches counts it
 * down. Its libstdc++ reaches that state only through __cxa_get_globals
 * and __cxa_get_globals_fast (PLT calls), so the bridge defines them as the
 * program's, when the program has a libstdc++. Fills out[0..max) and
 * returns how many entries (0 or 2). */
CAPSULE_HIDDEN size_t capsule_unwinder_bridge_entries(capsule_bridge_entry *out, size_t max);

#endif
#include <dlfcn.h>

#include "bridge.h"
#include "error.h"
#include "resolve.h"

#define CAPSULE_UNWINDER_SONAME "libgcc_s.so.1"

/* When set (resolved from the prefix for namespace lmid of prefix) holds
 * the prefix's libgcc_s.so.1 as a dependency, decides whether the program's
 * copy replaces it: the program has one (loaded, or loadable the ordinary
 * way), it finds frames in every namespace (_dl_find_object), and it
 * defines every version the set's objects need from it. If so, loads its
 * placeholder (share.h) and returns 1: the caller skips the prefix's copy.
 * Returns 0 when the capsule keeps its own (said in one capsule: line when
 * the program has a C++ runtime whose exceptions then cannot cross), -1
 * with an error. */
CAPSULE_HIDDEN int capsule_unwinder_share(Lmid_t lmid, const char *prefix,
                                          const capsule_depset *set);

/* One exception state per thread: each libstdc++ keeps the thread's caught
 * exceptions and its count of uncaught ones (__cxa_eh_globals), and the
 * side that throws counts one up where the side that catches counts it
 * down. Its libstdc++ reaches that state only through __cxa_get_globals
 * and __cxa_get_globals_fast (PLT calls), so the bridge defines them as the
 * program's, when the program has a libstdc++. Fills out[0..max) and
 * returns how many entries (0 or 2). */
CAPSULE_HIDDEN size_t capsule_unwinder_bridge_entries(capsule_bridge_entry *out, size_t max);

#endif
