/* What the dl* wrappers ask about the initialised shims. Lock-free: the
 * list only grows, and shims stay loaded for good once initialised. */
#ifndef CAPSULE_SHIMS_H
#define CAPSULE_SHIMS_H

#include <stddef.h>

#include "capsule.h"
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

/* ---- the set-up's steps the preflight (preflight.c) repeats ---- */

/* The `capsule:` line (with its newline) for a failure of shim's set-up:
 * the soname, the prefix when given, the cause, on one line. */
CAPSULE_HIDDEN void capsule_shim_line(char *line, size_t size, const capsule_shim *shim,
                                      const char *prefix, const char *cause);
/* Why a description cannot be trusted (another ABI, fields missing; why
 * holds the text when it is built), or NULL. Reads only `abi` and
 * `soname` (the same in every ABI) before the ABI is known to match. */
CAPSULE_HIDDEN const char *capsule_shim_refused(const capsule_shim *shim, char *why, size_t size);
/* CAPSULE_<SONAME>_PREFIX, then CAPSULE_PREFIX, then the built-in prefix. */
CAPSULE_HIDDEN const char *capsule_shim_prefix(const capsule_shim *shim);
/* The prefix as one canonical path (malloc'ed): `/host`, `/host/` and a
 * symlink to it name one tree, and so one namespace. NULL with an error. */
CAPSULE_HIDDEN char *capsule_shim_canonical_prefix(const char *prefix);
/* The target, then the `exports` sonames (*n of them; free the array
 * only); NULL when out of memory. */
CAPSULE_HIDDEN const char **capsule_shim_roots(const capsule_shim *shim, size_t *n);

#endif
