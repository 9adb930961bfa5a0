/* One heap: the allocator entry points of a capsule namespace. */
#ifndef CAPSULE_HEAP_H
#define CAPSULE_HEAP_H

#include <stddef.h>

#include "bridge.h"
#include "error.h"

/* Fills out[0..max) with one bridge entry per allocator function (malloc,
 * free, ..., and glibc's __libc_* aliases), each jumping to the function of
 * that name the default namespace uses (the program's interposed allocator
 * included). Returns how many it filled. */
CAPSULE_HIDDEN size_t capsule_heap_bridge_entries(capsule_bridge_entry *out, size_t max);

#endif
