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
#include <malloc.h>
#include <stdlib.h>


/* glibc exports these without declaring them. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

/* Taken by address, these bind the way every default-namespace object's
 * references do: through the default scope, to an interposed allocator
 * when the program has one. */
#define ENTRY(name) { #name, (const void *)name, NULL }

size_t
capsule_heap_bridge_entries(capsule_bridge_entry *out, size_t max)
{
    const capsule_bridge_entry entries[] = {
        ENTRY(malloc), ENTRY(free), ENTRY(calloc), ENTRY(realloc), ENTRY(reallocarray),
        ENTRY(posix_memalign), ENTRY(aligned_alloc), ENTRY(memalign), ENTRY(valloc),
        ENTRY(pvalloc), ENTRY(malloc_usable_size), ENTRY(malloc_trim), ENTRY(mallopt),
        ENTRY(mallinfo2), ENTRY(malloc_stats), ENTRY(malloc_info), ENTRY(__libc_malloc),
        ENTRY(__libc_free), ENTRY(__libc_calloc), ENTRY(__libc_realloc), ENTRY(__libc_memalign),
        ENTRY(__libc_valloc), ENTRY(__libc_pvalloc),
        /* deprecated in the headers, still bridged */
        { "mallinfo", NULL, NULL },
    };
    size_t n = 0;

    for (size_t i = 0; i < sizeof entries / sizeof entries[0] && n < max; i++) {
        out[n] = entries[i];
        if (!out[n].target)
            out[n].target = dlsym(RTLD_DEFAULT, out[n].name);
        if (out[n].target)
            n++;
    }
    return n;
}
