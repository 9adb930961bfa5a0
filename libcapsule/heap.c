/* One heap across the capsule boundary.
 *
 * Every capsule namespace starts with the bridge object, which defines the
 * whole allocator family. Symbol lookup in a namespace searches its first
 * object before anything else, so every object that enters the namespace,
 * its libc.so.6 included (glibc calls its allocator through its own GOT, to
 * allow interposition), binds these names to the bridge while it is being
 * relocated: before any constructor of the capsule runs. The bridge jumps
 * to the allocator of the default namespace. The capsule's libc never hands
 * out memory of its own, so nothing has to guess which heap owns a pointer.
 *
 * What stays apart: the capsule's libc keeps its own (then unused) malloc
 * state; mallopt/malloc_trim/mallinfo act on the one real heap. */
#define _GNU_SOURCE
#include "heap.h"

#include <dlfcn.h>

#include "debug.h"

static const char *const allocator[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
    "malloc_trim", "mallopt", "mallinfo", "mallinfo2", "malloc_stats", "malloc_info",
    "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "__libc_valloc", "__libc_pvalloc",
};

size_t
capsule_heap_bridge_entries(capsule_bridge_entry *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof allocator / sizeof allocator[0] && n < max; i++) {
        void *fn = dlsym(RTLD_DEFAULT, allocator[i]);
        if (!fn) {
            capsule_debug(CAPSULE_DEBUG_NS, "allocator function %s not found: the capsule "
                          "keeps its own", allocator[i]);
            continue;
        }
        out[n++] = (capsule_bridge_entry){ allocator[i], fn, NULL };
    }
    return n;
}
