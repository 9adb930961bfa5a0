/* libFuzzer harness: libcapsule's ld.so.cache reader (old, new and old+new
 * layouts) on arbitrary file contents. Every entry it reports must be a
 * NUL-terminated string inside the file (ASan checks the reads: fuzz builds
 * read the file into the heap, see mapfile.c). */
#define _GNU_SOURCE
#include <string.h>

#include "fuzz_common.h"
#include "ldcache.h"

volatile size_t fuzz_sink;

static int
check_entry(const char *soname, const char *path, void *data)
{
    size_t *count = data;

    /* Reading both strings whole is the check: ASan reports overreads. */
    fuzz_sink = strlen(soname) + strlen(path);
    (*count)++;
    return 0;
}

static int
stop_at_first(const char *soname, const char *path, void *data)
{
    (void)soname;
    (void)path;
    (void)data;
    return 7;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    capsule_ldcache *cache;
    size_t all = 0, some = 0;

    if (capsule_ldcache_open(fuzz_file(data, size), &cache) != 0)
        return 0;
    const char *format = capsule_ldcache_format(cache);
    if (strcmp(format, "new") && strcmp(format, "old") && strcmp(format, "old+new"))
        abort();
    capsule_ldcache_foreach(cache, NULL, check_entry, &all);
    capsule_ldcache_foreach(cache, "libc.so.6", check_entry, &some);
    if (some > all)
        abort();
    int r = capsule_ldcache_foreach(cache, NULL, stop_at_first, NULL);
    if (r != (all ? 7 : 0))
        abort();
    capsule_ldcache_close(cache);
    return 0;
}
