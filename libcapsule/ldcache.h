/* Reading an ld.so.cache file under a prefix. The file is untrusted: every
 * offset is checked against its size. */
#ifndef CAPSULE_LDCACHE_H
#define CAPSULE_LDCACHE_H

#include <stddef.h>

#include "error.h"

typedef struct capsule_ldcache capsule_ldcache;

/* Returns 0 and a cache, 1 when the file does not exist (*out = NULL), or -1
 * with an error when it exists but cannot be used. */
CAPSULE_HIDDEN int capsule_ldcache_open(const char *path, capsule_ldcache **out);
CAPSULE_HIDDEN void capsule_ldcache_close(capsule_ldcache *cache);

/* Calls fn(path, data) for every entry of this architecture whose soname is
 * `soname` (every entry when soname is NULL), in cache order, until fn
 * returns non-zero; returns that value (0 when fn never stopped). */
typedef int (*capsule_ldcache_fn)(const char *soname, const char *path, void *data);
CAPSULE_HIDDEN int capsule_ldcache_foreach(const capsule_ldcache *cache, const char *soname,
                                           capsule_ldcache_fn fn, void *data);

/* "new", "old" or "old+new": the layout that was found (for tracing and tests). */
CAPSULE_HIDDEN const char *capsule_ldcache_format(const capsule_ldcache *cache);

#endif
