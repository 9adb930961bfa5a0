#define _GNU_SOURCE
#include "objects.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "forklock.h"

#define BUCKETS 256

/* Capsule objects: only ever prepended to, never freed. Default-namespace
 * objects: hashed by dynamic section address, owned by the relocation
 * pass (which calls in with its own lock held). `lock` guards both lists;
 * it is a leaf: nothing is called under it but decoding. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static capsule_object *capsule_objects;
static capsule_object *program_objects[BUCKETS];

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&lock, CAPSULE_LOCK_OBJECTS);
}

static void
object_free(capsule_object *o)
{
    capsule_dynobj_fini(&o->dyn);
    free(o->name);
    free(o);
}

static capsule_object *
object_new(const char *name, ElfW(Addr) base, const ElfW(Dyn) *dyn, const ElfW(Phdr) *phdr,
           size_t phnum)
{
    capsule_object *o = calloc(1, sizeof *o);

    if (!o || !(o->name = strdup(name ? name : ""))) {
        free(o);
        capsule_error_set("out of memory");
        return NULL;
    }
    if (capsule_dynobj_init(&o->dyn, o->name, base, dyn, phdr, phnum) != 0) {
        free(o->name);
        free(o);
        return NULL;
    }
    o->key = (ElfW(Addr))dyn;
    return o;
}

/* ---- capsule objects ---- */

static capsule_object *
find_capsule(ElfW(Addr) key)
{
    for (capsule_object *o = capsule_objects; o; o = o->next) {
        if (o->key == key)
            return o;
    }
    return NULL;
}

capsule_object *
capsule_objects_add(void *handle, Lmid_t lmid, capsule_object_kind kind, const char *label)
{
    struct link_map *map = NULL;

    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map) {
        capsule_error_set("dlinfo: %s", dlerror());
        return NULL;
    }
    pthread_mutex_lock(&lock);
    capsule_object *o = find_capsule((ElfW(Addr))map->l_ld);
    if (o) {
        pthread_mutex_unlock(&lock);
        dlclose(handle); /* the record holds a reference already */
        return o;
    }
    /* Other namespaces' program headers are not listed to the caller: none
     * are needed for symbol lookup. */
    if ((o = object_new(map->l_name, map->l_addr, map->l_ld, NULL, 0))) {
        o->kind = kind;
        o->lmid = lmid;
        o->map = map;
        o->handle = handle;
        o->label = label;
        o->next = capsule_objects;
        capsule_objects = o;
    }
    pthread_mutex_unlock(&lock);
    return o;
}

capsule_object *
capsule_objects_by_path(Lmid_t lmid, const char *path)
{
    capsule_object *found = NULL;

    pthread_mutex_lock(&lock);
    for (capsule_object *o = capsule_objects; o && !found; o = o->next) {
        if (o->lmid == lmid && strcmp(o->name, path) == 0)
            found = o;
    }
    pthread_mutex_unlock(&lock);
    return found;
}

const char *
capsule_objects_label(const struct link_map *map)
{
    const char *label = NULL;

    pthread_mutex_lock(&lock);
    capsule_object *o = find_capsule((ElfW(Addr))map->l_ld);
    if (o && o->map == map)
        label = o->label;
    pthread_mutex_unlock(&lock);
    return label;
}

/* ---- the default namespace ---- */

static capsule_object **
bucket_of(const ElfW(Dyn) *dyn)
{
    ElfW(Addr) k = (ElfW(Addr))dyn;
    return &program_objects[((k >> 4) ^ (k >> 12) ^ (k >> 20)) % BUCKETS];
}

/* Two decodings of one mapping say the same. capsule_dynobj has no padding
 * (pointers and sizes only), so a copy compares byte for byte. */
static int
same_view(const capsule_dynobj *a, const capsule_dynobj *b)
{
    capsule_dynobj x = *a, y = *b;

    x.name = y.name = NULL; /* each record's own copy of one name */
    x.version_names = y.version_names = NULL;
    return memcmp(&x, &y, sizeof x) == 0 &&
           (!a->n_versions || memcmp(a->version_names, b->version_names,
                                     a->n_versions * sizeof *a->version_names) == 0);
}

static capsule_object *
program_new(const struct dl_phdr_info *info, const ElfW(Dyn) *dyn, const char *name)
{
    capsule_object *o = object_new(name, info->dlpi_addr, dyn, info->dlpi_phdr,
                                   info->dlpi_phnum);
    if (o)
        o->kind = CAPSULE_OBJECT_PROGRAM, o->lmid = LM_ID_BASE;
    return o;
}

static capsule_object *
program_locked(const struct dl_phdr_info *info, const ElfW(Dyn) *dyn, int recheck)
{
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    capsule_object **bucket = bucket_of(dyn);
    capsule_object *fresh = NULL;

    for (capsule_object **p = bucket; *p; p = &(*p)->next) {
        capsule_object *o = *p;
        if (o->key != (ElfW(Addr))dyn)
            continue;
        if (o->dyn.base == info->dlpi_addr && strcmp(o->name, name) == 0) {
            if (!recheck)
                return o;
            if (!(fresh = program_new(info, dyn, name)))
                return NULL;
            if (same_view(&o->dyn, &fresh->dyn)) {
                object_free(fresh);
                return o;
            }
            capsule_debug(CAPSULE_DEBUG_RELOC, "%s: another object at the same place",
                          o->dyn.name);
        }
        *p = o->next; /* another object now lives there */
        object_free(o);
        break;
    }
    if (!fresh && !(fresh = program_new(info, dyn, name)))
        return NULL;
    fresh->next = *bucket;
    *bucket = fresh;
    return fresh;
}

capsule_object *
capsule_objects_program(const struct dl_phdr_info *info, const ElfW(Dyn) *dyn, int recheck)
{
    pthread_mutex_lock(&lock);
    capsule_object *o = program_locked(info, dyn, recheck);
    pthread_mutex_unlock(&lock);
    return o;
}

void
capsule_objects_unsee(void)
{
    pthread_mutex_lock(&lock);
    for (size_t b = 0; b < BUCKETS; b++) {
        for (capsule_object *o = program_objects[b]; o; o = o->next)
            o->seen = 0;
    }
    pthread_mutex_unlock(&lock);
}

void
capsule_objects_prune(void)
{
    pthread_mutex_lock(&lock);
    for (size_t b = 0; b < BUCKETS; b++) {
        for (capsule_object **p = &program_objects[b]; *p;) {
            capsule_object *o = *p;
            if (o->seen) {
                p = &o->next;
                continue;
            }
            *p = o->next;
            object_free(o);
        }
    }
    pthread_mutex_unlock(&lock);
}
