/* Successful resolutions of dlopen inside a capsule, reused (reuse.h).
 *
 * The Vulkan loader opens and closes its implicit layer again and again:
 * each close unloads it, so each open would resolve its tree under the
 * prefix afresh. A resolution that loaded is remembered per namespace,
 * requested name and requester, and reused while nothing it depends on
 * visibly changed: the prefix's ld.so.cache, every object's file and the
 * directory each was found in (same device, inode, size, mtime, or still
 * absent), the namespace's exclude list, no other object of a
 * dependency's soname loaded in the namespace meanwhile, and every object
 * the resolution took as already loaded (not read: ld.so matches it by
 * soname) still loaded at the same path. A load that fails
 * drops the entry and resolves afresh; a miss is never remembered.
 *
 * Staleness accepted: a library added to a directory searched before the
 * one that matched (an RPATH/RUNPATH directory, a standard directory not
 * listed in ld.so.cache) without ldconfig rewriting ld.so.cache, or a
 * directory on a path re-pointed by a symlink, is not seen until one of the
 * checks above changes. Installing a library normally renames it into its
 * directory and runs ldconfig, which the checks see. */
#define _GNU_SOURCE
#include "reuse.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "forklock.h"

#define MAX_CACHED 256

typedef capsule_stamp stamp;

typedef struct cached {
    struct cached *next;
    const capsule_ns *ns;
    char *name, *requester; /* requester: NULL for none */
    size_t n_exclude;
    stamp ldcache;
    size_t n;                /* objects, load order, the root last */
    char **paths;            /* host paths */
    char **sonames;          /* DT_SONAME or NULL; for a loaded one, the name asked */
    int *loaded;             /* taken as loaded in the namespace, not read */
    char **dirs;             /* host directory each was found in */
    stamp *files, *dir_stamps;
} cached;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached *cache;
static size_t n_cached;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&cache_lock, CAPSULE_LOCK_REUSE);
}

/* The index of an earlier entry found in the same directory, or i: a plan's
 * objects share a few directories, each stamped (and checked) once. */
static size_t
first_in_dir(const cached *e, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(e->dirs[j], e->dirs[i]) == 0)
            return j;
    }
    return i;
}

/* The path whose stat() stamps the prefix's ld.so.cache, as the resolver
 * stamps it (capsule_depset.ldcache). */
static void
ldcache_path(const char *prefix, char *out, size_t size)
{
    size_t len = strlen(prefix);

    while (len > 0 && prefix[len - 1] == '/')
        len--;
    if (snprintf(out, size, "%.*s/etc/ld.so.cache", (int)len, prefix) >= (int)size)
        snprintf(out, size, "%s", "/nonexistent/ld.so.cache"); /* a stable "absent" */
}

static void
free_cached(cached *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->paths)
            free(e->paths[i]);
        if (e->sonames)
            free(e->sonames[i]);
        if (e->dirs)
            free(e->dirs[i]);
    }
    free(e->paths);
    free(e->sonames);
    free(e->loaded);
    free(e->dirs);
    free(e->files);
    free(e->dir_stamps);
    free(e->name);
    free(e->requester);
    free(e);
}

static int
same_key(const cached *e, const capsule_ns *ns, const char *name, const char *requester)
{
    return e->ns == ns && strcmp(e->name, name) == 0 &&
           (requester ? e->requester && strcmp(e->requester, requester) == 0 : !e->requester);
}

/* Unlinks the entry for the key; cache_lock held. */
static cached *
unlink_cached(const capsule_ns *ns, const char *name, const char *requester)
{
    for (cached **p = &cache; *p; p = &(*p)->next) {
        if (same_key(*p, ns, name, requester)) {
            cached *e = *p;
            *p = e->next;
            n_cached--;
            return e;
        }
    }
    return NULL;
}

static int
still_valid(capsule_ns *ns, const cached *e, size_t n_exclude)
{
    char path[PATH_MAX * 2];

    if (e->n_exclude != n_exclude)
        return 0;
    ldcache_path(capsule_ns_prefix(ns), path, sizeof path);
    if (!capsule_stamp_unchanged(path, &e->ldcache))
        return 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->loaded[i]) {
            /* The resolution took it as loaded: it must still be, at that
             * path, for a fresh one to take it again. */
            if (capsule_ns_find_soname(ns, e->sonames[i], path, sizeof path) != 0 ||
                strcmp(path, e->paths[i]) != 0)
                return 0;
            continue;
        }
        if (!capsule_stamp_unchanged(e->paths[i], &e->files[i]) ||
            (first_in_dir(e, i) == i && !capsule_stamp_unchanged(e->dirs[i], &e->dir_stamps[i])))
            return 0;
        /* ld.so would match a DT_NEEDED against another object of that soname. */
        if (i + 1 < e->n && e->sonames[i] &&
            capsule_ns_find_soname(ns, e->sonames[i], path, sizeof path) == 0 &&
            strcmp(path, e->paths[i]) != 0)
            return 0;
    }
    return 1;
}

/* Puts e back unless another thread remembered the key meanwhile. */
static void
put_back(cached *e)
{
    pthread_mutex_lock(&cache_lock);
    cached *other = unlink_cached(e->ns, e->name, e->requester);
    e->next = cache;
    cache = e;
    n_cached++;
    pthread_mutex_unlock(&cache_lock);
    if (other)
        free_cached(other);
}

/* The entry is taken out while it is checked (the checks walk the
 * namespace under ld.so's lock: never under cache_lock), and dropped if no
 * longer valid. */
char **
capsule_reuse_plan(capsule_ns *ns, const char *name, const char *requester, size_t n_exclude,
            size_t *n)
{
    pthread_mutex_lock(&cache_lock);
    cached *e = unlink_cached(ns, name, requester);
    pthread_mutex_unlock(&cache_lock);
    if (!e)
        return NULL;
    if (!still_valid(ns, e, n_exclude)) {
        free_cached(e);
        return NULL;
    }
    char **plan = calloc(e->n, sizeof *plan);
    for (size_t i = 0; plan && i < e->n; i++) {
        if (!(plan[i] = strdup(e->paths[i]))) {
            capsule_plan_free(plan, i);
            plan = NULL;
        }
    }
    *n = e->n;
    put_back(e);
    return plan;
}

void
capsule_plan_free(char **plan, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(plan[i]);
    free(plan);
}

void
capsule_reuse_forget(const capsule_ns *ns, const char *name, const char *requester)
{
    pthread_mutex_lock(&cache_lock);
    cached *e = unlink_cached(ns, name, requester);
    pthread_mutex_unlock(&cache_lock);
    if (e)
        free_cached(e);
}

/* Remembers a resolution whose load succeeded; `plan` (n objects, the root
 * last) is taken over. Objects the resolution took as already loaded are
 * remembered as such: the plan is valid only while they still are. */
void
capsule_reuse_remember(capsule_ns *ns, const char *name, const char *requester, size_t n_exclude,
         const capsule_depset *set, char **plan, size_t n, const size_t *index)
{
    char path[PATH_MAX * 2];
    cached *e = calloc(1, sizeof *e);
    int ok = e != NULL;

    if (ok) {
        e->ns = ns;
        e->n_exclude = n_exclude;
        e->n = n;
        e->paths = plan;
        plan = NULL;
        e->name = strdup(name);
        e->requester = requester ? strdup(requester) : NULL;
        e->sonames = calloc(n, sizeof *e->sonames);
        e->loaded = calloc(n, sizeof *e->loaded);
        e->dirs = calloc(n, sizeof *e->dirs);
        e->files = calloc(n, sizeof *e->files);
        e->dir_stamps = calloc(n, sizeof *e->dir_stamps);
        ok = e->name && (!requester || e->requester) && e->sonames && e->loaded && e->dirs &&
             e->files && e->dir_stamps;
    }
    for (size_t i = 0; ok && i < n; i++) {
        const capsule_dep *d = &set->deps[index[i]];
        if (d->loaded) {
            e->loaded[i] = 1;
            ok = (e->sonames[i] = strdup(d->soname)) != NULL &&
                 (e->dirs[i] = strdup("")) != NULL;
            continue;
        }
        const char *slash = strrchr(d->found_as, '/');
        int dlen = slash == d->found_as ? 1 : (int)(slash - d->found_as);
        if (!slash || snprintf(path, sizeof path, "%s%.*s", capsule_ns_prefix(ns), dlen,
                               d->found_as) >= (int)sizeof path) {
            ok = 0;
            break;
        }
        e->dirs[i] = strdup(path);
        e->sonames[i] = d->elf.soname ? strdup(d->elf.soname) : NULL;
        ok = e->dirs[i] && (!d->elf.soname || e->sonames[i]);
        /* The file as the resolver read it (fstat of what it opened). */
        if (d->elf.stamp.present)
            e->files[i] = d->elf.stamp;
        else
            capsule_stamp_path(e->paths[i], &e->files[i]);
        size_t first = ok ? first_in_dir(e, i) : i;
        if (first == i)
            capsule_stamp_path(e->dirs[i], &e->dir_stamps[i]);
        else
            e->dir_stamps[i] = e->dir_stamps[first];
    }
    if (ok)
        e->ldcache = set->ldcache;
    pthread_mutex_lock(&cache_lock);
    if (ok && n_cached < MAX_CACHED) {
        cached *old = unlink_cached(ns, name, requester);
        e->next = cache;
        cache = e;
        n_cached++;
        e = old;
    }
    pthread_mutex_unlock(&cache_lock);
    if (plan)
        capsule_plan_free(plan, n);
    if (e)
        free_cached(e);
}

