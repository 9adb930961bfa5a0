/* The dl* wrappers on both sides of the capsule boundary.
 *
 * Inside a capsule, the bridge (bridge.h) routes dlopen, dlsym and dlvsym
 * here with the namespace as context; dlmopen, dlclose, dlerror and dlinfo
 * are the program's, through libc's placeholder, so dlerror reports what
 * the wrappers did. Outside, the relocation pass points the
 * dlopen, dlmopen, dlsym and dlvsym slots of every default-namespace object
 * here. */
#ifndef CAPSULE_WRAPPERS_H
#define CAPSULE_WRAPPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#include "bridge.h"
#include "error.h"
#include "namespace.h"

/* The bridge entries of the dl* family for namespace ns. */
CAPSULE_HIDDEN size_t capsule_wrap_bridge_entries(capsule_ns *ns, capsule_bridge_entry *out,
                                                  size_t max);
/* Registers (once) the policy that redirects the default namespace's dl*
 * slots; the first shim to initialise calls it. */
CAPSULE_HIDDEN int capsule_wrap_install(void);

CAPSULE_HIDDEN void *capsule_inside_dlopen(const char *file, int mode, capsule_ns *ns,
                                           const void *caller);
/* Runs the relocation pass when ld.so loaded or unloaded anything since
 * the last one (objects the program's dlopen brought): first thing in every
 * outside dl* wrapper. */
CAPSULE_HIDDEN void capsule_outside_catch_up(void);

#endif
