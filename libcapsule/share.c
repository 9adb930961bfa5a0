/* Shared sonames (see share.h): the program's copy, and its placeholder
 * (placeholder.h) in the namespace. */
#define _GNU_SOURCE
#include "share.h"

#include <dlfcn.h>

#include "debug.h"
#include "namespace.h"
#include "placeholder.h"

/* The program's copy: already loaded, or loaded now into the default namespace. */
static void *
program_copy(const char *soname, int loaded_only)
{
    void *h = capsule_program_noload(soname, RTLD_LAZY);

    if (h) {
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: the program's copy is loaded", soname);
        return h;
    }
    (void)dlerror();
    if (loaded_only) {
        capsule_debug(CAPSULE_DEBUG_NS, "share %s (default): the program has not loaded it: "
                      "the capsule takes its own from the prefix", soname);
        return NULL;
    }
    h = dlopen(soname, RTLD_LAZY);
    if (h)
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: loaded the program's copy", soname);
    else
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: the program has no copy (%s): the capsule "
                      "takes its own from the prefix", soname, dlerror());
    return h;
}

int
capsule_share_load(capsule_ns *ns, const char *soname, int loaded_only)
{
    Lmid_t lmid = capsule_ns_lmid(ns);
    void *prior = capsule_ns_noload(ns, soname, RTLD_LAZY);
    if (prior) {
        dlclose(prior);
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: namespace %ld already has a copy: not "
                      "shared", soname, (long)lmid);
        return 1;
    }
    (void)dlerror();
    void *prog = program_copy(soname, loaded_only);
    if (!prog)
        return 1;
    return capsule_placeholder_load(lmid, soname, prog, CAPSULE_PLACEHOLDER_SHARED) ? 0 : -1;
}
