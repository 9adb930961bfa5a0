/* What the dl* wrappers ask about the initialised shims. Lock-free: the
 * list only grows, and shims stay loaded for good once initialised. */
#ifndef CAPSULE_SHIMS_H
#define CAPSULE_SHIMS_H

#include "elfarch.h"
#include "error.h"

/* addr, found by looking `name` up, translated to the real definition when
 * it lies in a shim that exports name (version), NULL when that shim's real
 * library lacks it (a shim built from another version); else addr itself. */
CAPSULE_HIDDEN void *capsule_shims_translate(void *addr, const char *name, const char *version);
/* 1 when some shim exports name (version). */
CAPSULE_HIDDEN int capsule_shims_export(const char *name, const char *version);
/* Non-zero when the object loaded at base is a shim; *target is then the
 * real definition of name (version), or NULL when the shim does not export
 * it (1) or exports it but its real library lacks it (2). */
CAPSULE_HIDDEN int capsule_shims_object(ElfW(Addr) base, const char *name, const char *version,
                                        void **target);

#endif
