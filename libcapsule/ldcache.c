#define _GNU_SOURCE
#include "ldcache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "elfarch.h"
#include "mapfile.h"

#define OLD_MAGIC "ld.so-1.7.0"
#define NEW_MAGIC "glibc-ld.so.cache1.1"
#define OLD_HEADER_SIZE 16u  /* magic[11] (padded to 12) + nlibs */
#define OLD_ENTRY_SIZE 12u   /* flags, key, value */
#define NEW_HEADER_SIZE 48u  /* magic[20], nlibs, len_strings, flags, pad[3], ext, unused[3] */
#define NEW_ENTRY_SIZE 24u   /* flags, key, value, osversion, hwcap (u64) */
#define MAX_SIZE (1u << 30)

struct capsule_ldcache {
    const unsigned char *map;
    size_t size;
    /* The entry table in use and the base its string offsets count from. */
    size_t entries, n_entries, entry_size, strings, strings_size;
    const char *format;
};

static uint32_t
read_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t
read_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A table of n entries of `entry` bytes at `at` fits in the file. */
static int
table_fits(const capsule_ldcache *c, size_t at, uint64_t n, size_t entry)
{
    return at <= c->size && n <= (c->size - at) / entry;
}

static int
use_new(capsule_ldcache *c, size_t at)
{
    if (at > c->size || c->size - at < NEW_HEADER_SIZE || memcmp(c->map + at, NEW_MAGIC, 20) != 0)
        return -1;
    uint32_t n = read_u32(c->map + at + 20);
    if (!table_fits(c, at + NEW_HEADER_SIZE, n, NEW_ENTRY_SIZE))
        return -1;
    c->entries = at + NEW_HEADER_SIZE;
    c->n_entries = n;
    c->entry_size = NEW_ENTRY_SIZE;
    c->strings = at;
    c->strings_size = c->size - at;
    return 0;
}

static int
parse(capsule_ldcache *c)
{
    if (use_new(c, 0) == 0) {
        c->format = "new";
        return 0;
    }
    if (c->size < OLD_HEADER_SIZE || memcmp(c->map, OLD_MAGIC, 11) != 0)
        return capsule_error_set("not an ld.so.cache file (unknown magic)");
    uint32_t n = read_u32(c->map + 12);
    if (!table_fits(c, OLD_HEADER_SIZE, n, OLD_ENTRY_SIZE))
        return capsule_error_set("ld.so.cache entry table runs past the end of the file");
    size_t end = OLD_HEADER_SIZE + (size_t)n * OLD_ENTRY_SIZE;
    size_t aligned = (end + 7u) & ~(size_t)7u;
    if (use_new(c, aligned) == 0) {
        c->format = "old+new";
        return 0;
    }
    c->entries = OLD_HEADER_SIZE;
    c->n_entries = n;
    c->entry_size = OLD_ENTRY_SIZE;
    c->strings = end;
    c->strings_size = c->size - end;
    c->format = "old";
    return 0;
}

int
capsule_ldcache_open(const char *path, capsule_ldcache **out)
{
    const unsigned char *data;
    size_t size;
    capsule_ldcache *c;
    int rc;

    *out = NULL;
    rc = capsule_map_file(path, MAX_SIZE, &data, &size);
    if (rc != 0)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c) {
        capsule_unmap_file(data, size);
        return capsule_error_set("out of memory");
    }
    c->map = data;
    c->size = size;
    if (parse(c) != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", capsule_error());
        capsule_ldcache_close(c);
        return capsule_error_set("%s: %s", path, why);
    }
    capsule_debug(CAPSULE_DEBUG_LDCACHE, "%s: %s format, %zu entries", path, c->format,
                  c->n_entries);
    *out = c;
    return 0;
}

void
capsule_ldcache_close(capsule_ldcache *cache)
{
    if (!cache)
        return;
    capsule_unmap_file(cache->map, cache->size);
    free(cache);
}

const char *
capsule_ldcache_format(const capsule_ldcache *cache)
{
    return cache->format;
}

/* The NUL-terminated string at `offset` of the string area, or NULL. */
static const char *
string_at(const capsule_ldcache *c, uint32_t offset)
{
    if (offset >= c->strings_size)
        return NULL;
    const char *s = (const char *)c->map + c->strings + offset;
    if (!memchr(s, '\0', c->strings_size - offset))
        return NULL;
    return s;
}

int
capsule_ldcache_foreach(const capsule_ldcache *cache, const char *soname, capsule_ldcache_fn fn,
                        void *data)
{
    for (size_t i = 0; i < cache->n_entries; i++) {
        const unsigned char *e = cache->map + cache->entries + i * cache->entry_size;
        uint32_t flags = read_u32(e);
        const char *key = string_at(cache, read_u32(e + 4));
        const char *value = string_at(cache, read_u32(e + 8));

        if (!key || !value || !CAPSULE_LDCACHE_FLAGS_OK(flags & 0xffffu))
            continue;
        /* Entries for glibc-hwcaps subdirectories are only valid on CPUs that
         * support that level: take the baseline entries only. */
        if (cache->entry_size == NEW_ENTRY_SIZE && read_u64(e + 16) != 0)
            continue;
        if (soname && strcmp(key, soname) != 0)
            continue;
        int r = fn(key, value, data);
        if (r)
            return r;
    }
    return 0;
}
