/* dlopen on both sides of the capsule boundary.
 *
 * Inside: a name resolves under the capsule's prefix as at the initial load
 * (bare sonames through the prefix's search rules with the caller's
 * DT_RPATH/DT_RUNPATH; absolute paths re-rooted into the prefix; the glibc
 * family and excluded sonames from the host), dependencies leaves first,
 * into the capsule's namespace. RTLD_GLOBAL cannot be given to a namespace
 * other than the default one (glibc crashes or refuses): the object is
 * opened RTLD_LOCAL, kept loaded for good, and joins the capsule's own
 * scope that dlsym(RTLD_DEFAULT) and dlsym(dlopen(NULL)) search from inside
 * (objects loaded later do not bind to it at relocation time).
 * dlopen(NULL) inside returns a handle on that scope.
 *
 * Outside: glibc's dlopen, then a relocation pass over what is new. glibc
 * searches the calling object's DT_RPATH/DT_RUNPATH; since glibc now sees
 * libcapsule as the caller, a bare name is searched in the real caller's
 * paths here first. */
#define _GNU_SOURCE
#include "wrappers.h"

#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datacopy.h"
#include "debug.h"
#include "nsmap.h"
#include "reloc.h"
#include "resolve.h"
#include "trampoline.h"

#define MAX_TEMPS 256

size_t
capsule_wrap_bridge_entries(capsule_ns *ns, capsule_bridge_entry *out, size_t max)
{
    const capsule_bridge_entry entries[] = {
        { "dlopen", (const void *)capsule_entry_inside_dlopen, ns },
        { "dlsym", (const void *)capsule_entry_inside_dlsym, ns },
        { "dlvsym", (const void *)capsule_entry_inside_dlvsym, ns },
        { "dlmopen", (const void *)dlmopen, NULL },
        { "dlclose", (const void *)dlclose, NULL },
        { "dlerror", (const void *)dlerror, NULL },
        { "dlinfo", (const void *)dlinfo, NULL },
    };
    size_t n = sizeof entries / sizeof entries[0];

    if (n > max)
        n = max;
    memcpy(out, entries, n * sizeof *out);
    return n;
}

/* ---- inside ---- */

static const char *
requester_in_prefix(const char *prefix, const void *caller)
{
    struct link_map *map = NULL;
    Dl_info info;
    size_t len = strlen(prefix);

    while (len > 1 && prefix[len - 1] == '/')
        len--;
    if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_name)
        return NULL;
    if (strncmp(map->l_name, prefix, len) != 0 || map->l_name[len] != '/')
        return NULL;
    return map->l_name + len;
}

/* Opens paths[n - 1] after paths[0..n-1) (its dependencies, leaves
 * first); the temporary references on the dependencies are dropped once the
 * root holds its own. */
static void *
load_paths(Lmid_t lmid, char *const *paths, size_t n_paths, int flags)
{
    void *temps[MAX_TEMPS], *h = NULL;
    size_t n = 0;
    int ok = 1;

    for (size_t i = 0; !(flags & RTLD_NOLOAD) && ok && i + 1 < n_paths; i++) {
        void *t = dlmopen(lmid, paths[i], (flags & (RTLD_LAZY | RTLD_NOW)) | RTLD_LOCAL);
        if (!t)
            ok = 0; /* dlerror() tells which dependency failed */
        else if (n < MAX_TEMPS)
            temps[n++] = t;
    }
    if (ok)
        h = dlmopen(lmid, paths[n_paths - 1], flags);
    while (n > 0)
        dlclose(temps[--n]);
    return h;
}

/* ---- successful resolutions, reused ----
 *
 * The Vulkan loader opens and closes its implicit layer again and again:
 * each close unloads it, so each open would resolve its tree under the
 * prefix afresh. A resolution that loaded is remembered per namespace,
 * requested name and requester, and reused while nothing it depends on
 * visibly changed: the prefix's ld.so.cache, every object's file and the
 * directory each was found in (same device, inode, size, mtime, or still
 * absent), the namespace's exclude list, and no other object of a
 * dependency's soname loaded in the namespace meanwhile. A load that fails
 * drops the entry and resolves afresh; a miss is never remembered.
 *
 * Staleness accepted: a library added to a directory searched before the
 * one that matched (an RPATH/RUNPATH directory, a standard directory not
 * listed in ld.so.cache) without ldconfig rewriting ld.so.cache, or a
 * directory on a path re-pointed by a symlink, is not seen until one of the
 * checks above changes. Installing a library normally renames it into its
 * directory and runs ldconfig, which the checks see. */

#define MAX_CACHED 256

typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int present;
} stamp;

typedef struct cached {
    struct cached *next;
    const capsule_ns *ns;
    char *name, *requester; /* requester: NULL for none */
    size_t n_exclude;
    stamp ldcache;
    size_t n;                /* objects, load order, the root last */
    char **paths;            /* host paths */
    char **sonames;          /* DT_SONAME or NULL */
    char **dirs;             /* host directory each was found in */
    stamp *files, *dir_stamps;
} cached;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached *cache;
static size_t n_cached;

static void
take_stamp(const char *path, stamp *out)
{
    struct stat st;

    memset(out, 0, sizeof *out);
    if (stat(path, &st) != 0)
        return;
    *out = (stamp){ st.st_dev, st.st_ino, st.st_size, st.st_mtim, 1 };
}

static int
same_stamp(const char *path, const stamp *then)
{
    stamp now;

    take_stamp(path, &now);
    return now.present == then->present && now.dev == then->dev && now.ino == then->ino &&
           now.size == then->size && now.mtime.tv_sec == then->mtime.tv_sec &&
           now.mtime.tv_nsec == then->mtime.tv_nsec;
}

static void
ldcache_path(const char *prefix, char *out, size_t size)
{
    if (capsule_path_in_prefix(prefix, "/etc/ld.so.cache", out, size, NULL, 0) != 0)
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
    if (!same_stamp(path, &e->ldcache))
        return 0;
    for (size_t i = 0; i < e->n; i++) {
        if (!same_stamp(e->paths[i], &e->files[i]) ||
            !same_stamp(e->dirs[i], &e->dir_stamps[i]))
            return 0;
        /* ld.so would match a DT_NEEDED against another object of that soname. */
        if (i + 1 < e->n && e->sonames[i] &&
            capsule_ns_find_soname(ns, e->sonames[i], path, sizeof path) == 0 &&
            strcmp(path, e->paths[i]) != 0)
            return 0;
    }
    return 1;
}

static void free_plan(char **plan, size_t n);

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

/* A copy of the load plan remembered for the key, or NULL. The entry is
 * taken out while it is checked (the checks walk the namespace under
 * ld.so's lock: never under cache_lock), and dropped if no longer valid. */
static char **
cached_plan(capsule_ns *ns, const char *name, const char *requester, size_t n_exclude,
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
            free_plan(plan, i);
            plan = NULL;
        }
    }
    *n = e->n;
    put_back(e);
    return plan;
}

static void
free_plan(char **plan, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(plan[i]);
    free(plan);
}

static void
forget(const capsule_ns *ns, const char *name, const char *requester)
{
    pthread_mutex_lock(&cache_lock);
    cached *e = unlink_cached(ns, name, requester);
    pthread_mutex_unlock(&cache_lock);
    if (e)
        free_cached(e);
}

/* Remembers a resolution whose load succeeded; `plan` (n objects, the root
 * last) is taken over. Sets with objects taken as already loaded are not
 * remembered: their resolution depended on what was loaded then. */
static void
remember(capsule_ns *ns, const char *name, const char *requester, size_t n_exclude,
         const capsule_depset *set, char **plan, size_t n, const size_t *index)
{
    char path[PATH_MAX * 2];
    cached *e = calloc(1, sizeof *e);
    int ok = e != NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = !set->deps[index[i]].loaded;
    if (ok) {
        e->ns = ns;
        e->n_exclude = n_exclude;
        e->n = n;
        e->paths = plan;
        plan = NULL;
        e->name = strdup(name);
        e->requester = requester ? strdup(requester) : NULL;
        e->sonames = calloc(n, sizeof *e->sonames);
        e->dirs = calloc(n, sizeof *e->dirs);
        e->files = calloc(n, sizeof *e->files);
        e->dir_stamps = calloc(n, sizeof *e->dir_stamps);
        ok = e->name && (!requester || e->requester) && e->sonames && e->dirs && e->files &&
             e->dir_stamps;
    }
    for (size_t i = 0; ok && i < n; i++) {
        const capsule_dep *d = &set->deps[index[i]];
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
        take_stamp(e->paths[i], &e->files[i]);
        take_stamp(e->dirs[i], &e->dir_stamps[i]);
    }
    if (ok) {
        ldcache_path(capsule_ns_prefix(ns), path, sizeof path);
        take_stamp(path, &e->ldcache);
    }
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
        free_plan(plan, n);
    if (e)
        free_cached(e);
}

static void *
not_found(Lmid_t lmid, const char *prefix, const char *file, const char *why)
{
    char path[PATH_MAX];

    capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s: %s", file, why);
    /* glibc's dlerror() should say why: ask it for a path that cannot exist. */
    snprintf(path, sizeof path, "%s/%s (capsule: not found under this prefix)", prefix, file);
    return dlmopen(lmid, path, RTLD_LAZY);
}

/* ld.so matches a name against the objects already in the namespace (by
 * path, by soname) before it searches anything, so an object loaded there
 * is taken as it is: its tree under the prefix is not resolved again (the
 * Vulkan loader opens every ICD over and over). Only what is loaded counts;
 * a miss is never remembered, so a library put into the prefix after a
 * failed dlopen is found by the next one. NULL when not loaded. */
static void *
reopen_loaded(capsule_ns *ns, const char *root, int flags)
{
    char path[PATH_MAX * 2];
    void *h;

    if (root[0] == '/') {
        if (capsule_path_in_prefix(capsule_ns_prefix(ns), root, path, sizeof path, NULL, 0) != 0)
            return NULL;
    } else if (capsule_ns_find_soname(ns, root, path, sizeof path) != 0) {
        return NULL;
    }
    h = dlmopen(capsule_ns_lmid(ns), path, flags | RTLD_NOLOAD);
    if (!h) {
        (void)dlerror(); /* not loaded (or unloaded meanwhile): no error of the caller's */
        return NULL;
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s -> %s (loaded)", root, path);
    return h;
}

static int
loaded_in_ns(void *ns, const char *soname, char *out, size_t size)
{
    return capsule_ns_find_soname(ns, soname, out, size);
}

/* The load plan of a resolved set: its objects leaves first, the root
 * last (index[] gets their places in the set). NULL when out of memory. */
static char **
plan_of(const capsule_depset *set, size_t root, size_t *n, size_t **index)
{
    char **plan = calloc(set->n_order + 1, sizeof *plan);

    *index = calloc(set->n_order + 1, sizeof **index);
    *n = 0;
    if (!plan || !*index) {
        free(plan);
        free(*index);
        return NULL;
    }
    for (size_t i = 0; i <= set->n_order; i++) {
        size_t d = i < set->n_order ? set->order[i] : root;
        if (i < set->n_order && d == root)
            continue;
        (*index)[*n] = d;
        if (!(plan[(*n)++] = strdup(set->deps[d].path))) {
            free_plan(plan, *n);
            free(*index);
            return NULL;
        }
    }
    return plan;
}

static size_t
count(char *const *list)
{
    size_t n = 0;

    while (list && list[n])
        n++;
    return n;
}

static void *
open_in_prefix(capsule_ns *ns, const char *file, int flags, const void *caller)
{
    const char *prefix = capsule_ns_prefix(ns), *root = file;
    size_t plen = strlen(prefix), n;
    capsule_depset set;
    size_t *index;
    char **plan;
    void *h;

    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    if (file[0] == '/' && strncmp(file, prefix, plen) == 0 && file[plen] == '/')
        root = file + plen; /* already a path inside the prefix */
    if ((h = reopen_loaded(ns, root, flags)))
        return h;
    double t0 = capsule_debug_now_us();
    const char *requester = requester_in_prefix(prefix, caller);
    char **exclude = capsule_ns_exclude_list(ns);
    size_t n_exclude = count(exclude);
    plan = flags & RTLD_NOLOAD ? NULL : cached_plan(ns, root, requester, n_exclude, &n);
    if (plan) {
        double t1 = capsule_debug_now_us();
        h = load_paths(capsule_ns_lmid(ns), plan, n, flags);
        capsule_debug(CAPSULE_DEBUG_TIME, "inside dlopen %s: cached %.0f us, load %.0f us",
                      file, t1 - t0, capsule_debug_now_us() - t1);
        if (h) {
            capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s -> %s (cached)", file,
                          plan[n - 1]);
            free_plan(plan, n);
            free(exclude);
            capsule_ns_keep_glibc(ns);
            return h;
        }
        (void)dlerror(); /* resolved afresh below, which says why if it fails again */
        free_plan(plan, n);
        forget(ns, root, requester);
        t0 = capsule_debug_now_us();
    }
    int rc = capsule_resolve_from(prefix, root, requester, (const char *const *)exclude,
                                  loaded_in_ns, ns, &set);
    free(exclude);
    if (rc != 0)
        return not_found(capsule_ns_lmid(ns), prefix, file, capsule_error());
    size_t d = capsule_depset_find(&set, root);
    if (d == CAPSULE_NO_PARENT) {
        capsule_depset_free(&set);
        return not_found(capsule_ns_lmid(ns), prefix, file, "not resolved");
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s -> %s", file, set.deps[d].path);
    if (!(plan = plan_of(&set, d, &n, &index))) {
        capsule_depset_free(&set);
        return not_found(capsule_ns_lmid(ns), prefix, file, "out of memory");
    }
    double t1 = capsule_debug_now_us();
    h = load_paths(capsule_ns_lmid(ns), plan, n, flags);
    capsule_debug(CAPSULE_DEBUG_TIME, "inside dlopen %s: resolve %.0f us, load %.0f us", file,
                  t1 - t0, capsule_debug_now_us() - t1);
    if (h && !(flags & RTLD_NOLOAD)) {
        remember(ns, root, requester, n_exclude, &set, plan, n, index);
        capsule_ns_keep_glibc(ns);
    } else {
        free_plan(plan, n);
    }
    free(index);
    capsule_depset_free(&set);
    return h;
}

/* Makes an RTLD_GLOBAL object searchable from inside for as long as it
 * stays loaded (no reference of ours: its last dlclose unloads it, as
 * Mesa's dlclose of its DRI driver does without capsules). */
static void
make_global(capsule_ns *ns, void *h)
{
    struct link_map *map = NULL;

    if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name)
        capsule_ns_scope_add_path(ns, map->l_name);
}

static int
taken_from_host(capsule_ns *ns, const char *file)
{
    if (!strchr(file, '/'))
        return capsule_ns_excluded(ns, file);
    if (file[0] != '/')
        return 1; /* relative to the working directory, as glibc takes it */
    return capsule_ns_excluded(ns, file);
}

/* CAPSULE_DEBUG=ns: a map after every inside dlopen, so that drivers the
 * capsule unloads again before exit still show where they came from. */
static void
note_in_map(void)
{
    static unsigned long count;
    char when[64];

    if (!(capsule_debug_flags & CAPSULE_DEBUG_NS))
        return;
    snprintf(when, sizeof when, "after inside dlopen %lu",
             __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED));
    capsule_nsmap_print(when);
}

void *
capsule_inside_dlopen(const char *file, int mode, capsule_ns *ns, const void *caller)
{
    Lmid_t lmid = capsule_ns_lmid(ns);
    int flags = mode & ~RTLD_GLOBAL;
    struct link_map *bridge = NULL;
    void *h;

    if (!file || !file[0]) {
        if (dlinfo(capsule_ns_bridge(ns), RTLD_DI_LINKMAP, &bridge) != 0 || !bridge)
            return NULL;
        return dlmopen(lmid, bridge->l_name, RTLD_LAZY | RTLD_NOLOAD);
    }
    if (strchr(file, '/') && capsule_ns_shared(ns, file))
        h = dlmopen(lmid, strrchr(file, '/') + 1, flags); /* the placeholder, by soname */
    else if (taken_from_host(ns, file))
        h = dlmopen(lmid, file, flags);
    else
        h = open_in_prefix(ns, file, flags, caller);
    if (h && (mode & RTLD_GLOBAL))
        make_global(ns, h);
    if (h) {
        capsule_datacopy_apply(ns);
        note_in_map();
    }
    return h;
}

/* ---- outside ---- */

static const char *
dyn_string(const struct link_map *map, ElfW(Sxword) tag)
{
    const char *strtab = NULL;
    ElfW(Addr) off = 0;
    int have = 0;

    for (const ElfW(Dyn) *d = map->l_ld; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB)
            strtab = (const char *)(d->d_un.d_ptr < map->l_addr ? d->d_un.d_ptr + map->l_addr
                                                                : d->d_un.d_ptr);
        else if (d->d_tag == tag)
            off = d->d_un.d_val, have = 1;
    }
    return have && strtab ? strtab + off : NULL;
}

static void
origin_of(const struct link_map *map, char *out, size_t size)
{
    char path[PATH_MAX];
    const char *name = map->l_name && map->l_name[0] ? map->l_name : "/proc/self/exe";

    if (!realpath(name, path))
        snprintf(path, sizeof path, "%s", name);
    char *slash = strrchr(path, '/');
    if (slash && slash != path)
        *slash = '\0';
    snprintf(out, size, "%s", path);
}

static void *
try_dirs(const char *list, const char *origin, const char *file, int mode)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];

    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ":;");
        if (len > 0 && capsule_expand_search_entry(p, len, origin, dir, sizeof dir) == 0 &&
            snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path &&
            access(path, F_OK) == 0) {
            void *h = dlopen(path, mode);
            if (h)
                return h;
        }
        p += len;
        p += *p != '\0';
    }
    return NULL;
}

/* dlopen as the real caller would: its own search paths first. */
static void *
open_as(const char *file, int mode, const void *caller)
{
    struct link_map *map = NULL;
    Dl_info info;
    char origin[PATH_MAX];
    void *h;

    if (!file || strchr(file, '/'))
        return dlopen(file, mode);
    if ((h = dlopen(file, mode | RTLD_NOLOAD)))
        return h;
    if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
        return dlopen(file, mode);
    const char *runpath = dyn_string(map, DT_RUNPATH);
    const char *rpath = runpath ? NULL : dyn_string(map, DT_RPATH);
    if (runpath || rpath) {
        origin_of(map, origin, sizeof origin);
        if (runpath && (h = try_dirs(secure_getenv("LD_LIBRARY_PATH"), origin, file, mode)))
            return h;
        if ((h = try_dirs(runpath ? runpath : rpath, origin, file, mode)))
            return h;
    }
    return dlopen(file, mode);
}

static void
after_load(void)
{
    if (capsule_reloc_pass() != 0) {
        char line[1200];
        int n = snprintf(line, sizeof line, "capsule: relocation pass after dlopen: %s\n",
                         capsule_error());
        if (n > 0 && write(STDERR_FILENO, line, strlen(line)) < 0)
            return;
    }
}

void *
capsule_outside_dlopen(const char *file, int mode, const void *caller)
{
    void *h = open_as(file, mode, caller);

    if (h)
        after_load();
    return h;
}

void *
capsule_outside_dlmopen(Lmid_t lmid, const char *file, int mode, const void *caller)
{
    void *h;

    (void)caller;
    h = dlmopen(lmid, file, mode);
    if (h && lmid == LM_ID_BASE)
        after_load();
    return h;
}

/* ---- the policy for the default namespace's slots ---- */

typedef struct {
    const char *name;
    void *real;
    void *entry;
    void *global; /* what a lazy slot would bind to */
} hook;

static hook hooks[4];

/* Runs for every slot of every object: a resolved slot is decided by its
 * value alone (no read of its name) unless it holds one of glibc's four. */
static int
hook_lookup(void *ctx, const capsule_slot *slot, ElfW(Addr) *value)
{
    size_t n = sizeof hooks / sizeof hooks[0], i;

    (void)ctx;
    if (!slot->lazy) {
        for (i = 0; i < n && slot->current != (ElfW(Addr))hooks[i].real; i++)
            ;
        if (i == n)
            return 0; /* not glibc's, or bound to an interposer: leave it */
    }
    if (slot->name[0] != 'd' || slot->name[1] != 'l')
        return 0;
    for (i = 0; i < n; i++) {
        if (strcmp(slot->name, hooks[i].name) != 0)
            continue;
        if (slot->lazy ? hooks[i].global != hooks[i].real
                       : slot->current != (ElfW(Addr))hooks[i].real)
            return 0; /* bound to an interposer: leave it */
        *value = (ElfW(Addr))hooks[i].entry;
        return 1;
    }
    return 0;
}

int
capsule_wrap_install(void)
{
    static const capsule_policy policy = { "dl* wrappers", hook_lookup, NULL };
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int installed;
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!installed) {
        hooks[0] = (hook){ "dlopen", (void *)dlopen, (void *)capsule_entry_outside_dlopen, 0 };
        hooks[1] = (hook){ "dlmopen", (void *)dlmopen, (void *)capsule_entry_outside_dlmopen, 0 };
        hooks[2] = (hook){ "dlsym", (void *)dlsym, (void *)capsule_entry_outside_dlsym, 0 };
        hooks[3] = (hook){ "dlvsym", (void *)dlvsym, (void *)capsule_entry_outside_dlvsym, 0 };
        for (size_t i = 0; i < 4; i++)
            hooks[i].global = dlsym(RTLD_DEFAULT, hooks[i].name);
        installed = 1;
        rc = capsule_reloc_add(&policy, NULL);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
