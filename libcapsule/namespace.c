#define _GNU_SOURCE
#include "namespace.h"

#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "debug.h"
#include "dynobj.h"
#include "forklock.h"
#include "objects.h"
#include "placeholder.h"
#include "share.h"
#include "unwinder.h"

#define MAX_BRIDGE 64

struct capsule_ns {
    char *prefix;
    Lmid_t lmid;
    void *bridge;
    struct link_map *bridge_map; /* the head of the namespace's list */
    capsule_iterate_fn iterate;  /* dl_iterate_phdr over this namespace */
    pthread_mutex_t lock;     /* scope and exclude; a leaf lock */
    capsule_scope_entry *scope; /* never shrinks: readers copy entries */
    size_t n_scope, cap_scope;
    char **exclude;
    size_t n_exclude, cap_exclude;
    char **shared;            /* sonames whose placeholder is loaded */
    size_t n_shared, cap_shared;
    char **glibc;             /* glibc libraries placed (registry_lock) */
    size_t n_glibc, cap_glibc;
    capsule_ns *next;
};

/* The list is only ever prepended to, and published with release
 * semantics: wrappers read it without the lock. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&registry_lock, CAPSULE_LOCK_REGISTRY);
}
static capsule_ns *registry;

static size_t
count_namespaces(void)
{
    size_t n = 0;

    for (capsule_ns *ns = registry; ns; ns = ns->next)
        n++;
    return n;
}

/* Out of namespaces or of the static TLS glibc reserves for them: say which
 * limit, how many capsule namespaces hold it, and what (if anything) raises it. */
static int
explain_dlmopen(const char *what, const char *err)
{
    size_t used = count_namespaces();

    if (!err)
        err = "unknown dlmopen error";
    if (strstr(err, "no more namespaces"))
        return capsule_error_set("dlmopen %s: %s (glibc allows 16 namespaces in all, one of them "
                                 "the program's, and %zu are capsules: one per prefix; the "
                                 "glibc.rtld.nns tunable cannot raise this limit, fewer "
                                 "prefixes can)",
                                 what, err, used);
    if (strstr(err, "static TLS"))
        return capsule_error_set("dlmopen %s: %s (static TLS reserved for namespaces ran out "
                                 "in capsule namespace %zu, one per prefix: raise the "
                                 "glibc tunable glibc.rtld.nns, e.g. "
                                 "GLIBC_TUNABLES=glibc.rtld.nns=16, at most 16 namespaces in all)",
                                 what, err, used);
    return capsule_error_set("dlmopen %s: %s", what, err);
}

static void *
create_bridge(capsule_ns *ns, capsule_bridge_fill_fn fill)
{
    capsule_bridge_entry entries[MAX_BRIDGE];
    size_t n = fill(ns, entries, MAX_BRIDGE);

    return capsule_bridge_load(entries, n, &ns->lmid, &ns->iterate);
}

static int place_glibc(capsule_ns *ns, const char *soname);
static int place_program_glibc(capsule_ns *ns);

static capsule_ns *
ns_for(const char *prefix, capsule_bridge_fill_fn fill)
{
    for (capsule_ns *ns = registry; ns; ns = ns->next) {
        if (strcmp(ns->prefix, prefix) == 0)
            return ns;
    }
    capsule_ns *ns = calloc(1, sizeof *ns);
    if (!ns || !(ns->prefix = strdup(prefix))) {
        free(ns);
        capsule_error_set("out of memory");
        return NULL;
    }
    pthread_mutex_init(&ns->lock, NULL);
    capsule_forklock_add(&ns->lock, CAPSULE_LOCK_NAMESPACE);
    double t0 = capsule_debug_now_us();
    ns->bridge = create_bridge(ns, fill);
    capsule_debug(CAPSULE_DEBUG_TIME, "prefix %s: bridge %.0f us", prefix,
                  capsule_debug_now_us() - t0);
    if (!ns->bridge || dlinfo(ns->bridge, RTLD_DI_LINKMAP, &ns->bridge_map) != 0) {
        if (ns->bridge) {
            capsule_error_set("dlinfo of the bridge object: %s", dlerror());
        } else {
            char cause[512];
            snprintf(cause, sizeof cause, "%s", capsule_error());
            explain_dlmopen("of the bridge object (a new namespace)", cause);
        }
        free(ns->prefix);
        free(ns);
        return NULL;
    }
    capsule_debug(CAPSULE_DEBUG_NS, "new namespace %ld for prefix %s", (long)ns->lmid,
                  ns->prefix);
    capsule_objects_add(ns->bridge, ns->lmid, CAPSULE_OBJECT_BRIDGE, NULL);
    /* Right after the bridge, before anything that needs it: the namespace's
     * libc is the program's, through its placeholder. */
    if (place_glibc(ns, "libc.so.6") != 0)
        return NULL; /* the namespace stays unused: nothing in it runs */
    ns->next = registry;
    __atomic_store_n(&registry, ns, __ATOMIC_RELEASE);
    return ns;
}

/* Loads one object of a resolved set; its record (objects.h) keeps the
 * reference for good. */
static int
load_one(capsule_ns *ns, const char *path)
{
    if (capsule_objects_by_path(ns->lmid, path))
        return 0;
    /* RTLD_NOW: a symbol missing in the prefix fails here, as one capsule:
     * line, not later as ld.so's "symbol lookup error" at the first call. */
    void *handle = dlmopen(ns->lmid, path, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return explain_dlmopen(path, dlerror());
    capsule_debug(CAPSULE_DEBUG_NS, "namespace %ld: loaded %s", (long)ns->lmid, path);
    return capsule_objects_add(handle, ns->lmid, CAPSULE_OBJECT_PREFIX, NULL) ? 0 : -1;
}

static int
in_list(char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], name) == 0)
            return 1;
    }
    return 0;
}

/* Adds the names not in it yet to list; called with ns->lock held. */
static int
add_names(char ***list, size_t *n, size_t *cap, const char *const *names)
{
    for (size_t i = 0; names && names[i]; i++) {
        if (in_list(*list, *n, names[i]))
            continue;
        if (capsule_grow((void **)list, cap, *n, sizeof(char *)) != 0)
            return -1;
        if (!((*list)[*n] = strdup(names[i])))
            return capsule_error_set("out of memory");
        (*n)++;
    }
    return 0;
}

static int
add_excludes(capsule_ns *ns, const char *const *exclude)
{
    pthread_mutex_lock(&ns->lock);
    int rc = add_names(&ns->exclude, &ns->n_exclude, &ns->cap_exclude, exclude);
    pthread_mutex_unlock(&ns->lock);
    return rc;
}

/* Places the share sonames not placed yet; registry_lock held. A shared
 * soname is never taken from the prefix: it joins the exclude set. */
static int
add_shares(capsule_ns *ns, const char *const *share, int loaded_only)
{
    for (size_t i = 0; share && share[i]; i++) {
        pthread_mutex_lock(&ns->lock);
        int known = in_list(ns->shared, ns->n_shared, share[i]);
        pthread_mutex_unlock(&ns->lock);
        if (known)
            continue;
        int rc = capsule_share_load(ns, share[i], loaded_only);
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        const char *one[] = { share[i], NULL };
        pthread_mutex_lock(&ns->lock);
        rc = add_names(&ns->shared, &ns->n_shared, &ns->cap_shared, one);
        if (rc == 0)
            rc = add_names(&ns->exclude, &ns->n_exclude, &ns->cap_exclude, one);
        pthread_mutex_unlock(&ns->lock);
        if (rc != 0)
            return -1;
    }
    return 0;
}

capsule_ns *
capsule_ns_find(const char *prefix)
{
    for (capsule_ns *ns = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); ns; ns = ns->next) {
        if (strcmp(ns->prefix, prefix) == 0)
            return ns;
    }
    return NULL;
}

int
capsule_ns_open(const char *prefix, capsule_bridge_fill_fn fill, capsule_ns **out)
{
    pthread_mutex_lock(&registry_lock);
    *out = ns_for(prefix, fill);
    pthread_mutex_unlock(&registry_lock);
    return *out ? 0 : -1;
}

/* The libraries whose state crosses the boundary with the handles
 * programs pass in: an X Display* or xcb_connection_t*, a wl_display*. */
static const char *const default_share[] = {
    "libX11.so.6", "libxcb.so.1", "libwayland-client.so.0", NULL,
};

const char *const *
capsule_ns_default_share(void)
{
    return default_share;
}

int
capsule_ns_share(capsule_ns *ns, const char *const *share)
{
    pthread_mutex_lock(&registry_lock);
    /* The default list shares what the program has loaded: a program that
     * never opened an X connection passes none in, and the capsule keeps
     * the prefix's copies (matching the host's stack). A list given
     * explicitly is shared, the program's copy loaded when needed. */
    int rc = share ? add_shares(ns, share, 0) : add_shares(ns, default_share, 1);
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

int
capsule_ns_shared(capsule_ns *ns, const char *soname)
{
    const char *base = strrchr(soname, '/');

    base = base ? base + 1 : soname;
    pthread_mutex_lock(&ns->lock);
    int found = in_list(ns->shared, ns->n_shared, base);
    pthread_mutex_unlock(&ns->lock);
    return found;
}

char **
capsule_ns_with_shared(capsule_ns *ns, const char *const *exclude)
{
    size_t n = 0;

    while (exclude && exclude[n])
        n++;
    pthread_mutex_lock(&ns->lock);
    char **list = calloc(n + ns->n_shared + 1, sizeof *list);
    if (list) {
        if (n)
            memcpy(list, exclude, n * sizeof *list);
        if (ns->n_shared)
            memcpy(list + n, ns->shared, ns->n_shared * sizeof *list);
    }
    pthread_mutex_unlock(&ns->lock);
    if (!list)
        capsule_error_set("out of memory");
    return list;
}

/* The program's libgcc_s in place of the prefix's (unwinder.h), unless the
 * namespace holds the prefix's already. Returns the index in set of the
 * copy not to load, or CAPSULE_NO_PARENT. */
static size_t
share_unwinder(capsule_ns *ns, const capsule_depset *set, int *rc)
{
    size_t d = capsule_depset_find(set, CAPSULE_UNWINDER_SONAME);
    void *prior;

    if (d == CAPSULE_NO_PARENT || capsule_objects_by_path(ns->lmid, set->deps[d].path))
        return CAPSULE_NO_PARENT;
    if ((prior = capsule_ns_noload(ns, CAPSULE_UNWINDER_SONAME, RTLD_LAZY))) {
        dlclose(prior); /* the prefix's, or the placeholder another thread is placing */
        return CAPSULE_NO_PARENT;
    }
    int shared = capsule_unwinder_share(ns->lmid, ns->prefix, set);
    if (shared <= 0) {
        *rc = shared;
        return CAPSULE_NO_PARENT;
    }
    const char *one[] = { CAPSULE_UNWINDER_SONAME, NULL };
    pthread_mutex_lock(&ns->lock);
    *rc = add_names(&ns->shared, &ns->n_shared, &ns->cap_shared, one);
    if (*rc == 0)
        *rc = add_names(&ns->exclude, &ns->n_exclude, &ns->cap_exclude, one);
    pthread_mutex_unlock(&ns->lock);
    return d;
}

int
capsule_ns_share_unwinder(capsule_ns *ns, const capsule_depset *set)
{
    if (capsule_depset_find(set, CAPSULE_UNWINDER_SONAME) == CAPSULE_NO_PARENT)
        return 0;
    if (capsule_ns_shared(ns, CAPSULE_UNWINDER_SONAME))
        return 1;
    /* No libcapsule lock here: a wrapper never holds one while ld.so runs
     * (ld.so holds its own while constructors call capsule_ns_load). */
    int rc = 0;
    size_t skip = share_unwinder(ns, set, &rc);
    if (rc < 0)
        return -1;
    return skip != CAPSULE_NO_PARENT || capsule_ns_shared(ns, CAPSULE_UNWINDER_SONAME);
}

int
capsule_ns_load(capsule_ns *ns, const capsule_depset *set, const char *const *exclude)
{
    int rc = add_excludes(ns, exclude);

    if (rc == 0)
        rc = capsule_ns_place_needed(ns, set);
    if (rc == 0 && exclude && exclude[0])
        rc = place_program_glibc(ns);
    pthread_mutex_lock(&registry_lock);
    size_t skip = rc == 0 ? share_unwinder(ns, set, &rc) : CAPSULE_NO_PARENT;
    for (size_t i = 0; rc == 0 && i < set->n_order; i++) {
        if (set->order[i] != skip)
            rc = load_one(ns, set->deps[set->order[i]].path);
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

Lmid_t
capsule_ns_lmid(const capsule_ns *ns)
{
    return ns->lmid;
}

const char *
capsule_ns_prefix(const capsule_ns *ns)
{
    return ns->prefix;
}

void *
capsule_ns_bridge(const capsule_ns *ns)
{
    return ns->bridge;
}

int
capsule_ns_excluded(capsule_ns *ns, const char *soname)
{
    const char *base = strrchr(soname, '/');
    int found = capsule_is_glibc_family(soname);

    base = base ? base + 1 : soname;
    pthread_mutex_lock(&ns->lock);
    for (size_t i = 0; i < ns->n_exclude && !found; i++)
        found = strcmp(ns->exclude[i], base) == 0;
    pthread_mutex_unlock(&ns->lock);
    return found;
}

char **
capsule_ns_exclude_list(capsule_ns *ns)
{
    pthread_mutex_lock(&ns->lock);
    char **list = calloc(ns->n_exclude + 1, sizeof *list);
    if (list && ns->n_exclude) /* no list yet: exclude is NULL, memcpy's UB */
        memcpy(list, ns->exclude, ns->n_exclude * sizeof *list);
    pthread_mutex_unlock(&ns->lock);
    return list;
}

static void
scope_add(capsule_ns *ns, void *handle, const char *path)
{
    pthread_mutex_lock(&ns->lock);
    for (size_t i = 0; i < ns->n_scope; i++) {
        const capsule_scope_entry *e = &ns->scope[i];
        if (handle ? e->handle == handle : e->path && strcmp(e->path, path) == 0) {
            pthread_mutex_unlock(&ns->lock);
            return;
        }
    }
    char *copy = path ? strdup(path) : NULL;
    if ((!path || copy) &&
        capsule_grow((void **)&ns->scope, &ns->cap_scope, ns->n_scope, sizeof *ns->scope) == 0)
        ns->scope[ns->n_scope++] = (capsule_scope_entry){ handle, copy };
    else
        free(copy);
    pthread_mutex_unlock(&ns->lock);
}

void
capsule_ns_scope_add(capsule_ns *ns, void *handle)
{
    scope_add(ns, handle, NULL);
}

void
capsule_ns_scope_add_path(capsule_ns *ns, const char *path)
{
    scope_add(ns, NULL, path);
}

size_t
capsule_ns_scope(capsule_ns *ns, capsule_scope_entry *out, size_t max)
{
    pthread_mutex_lock(&ns->lock);
    size_t n = ns->n_scope < max ? ns->n_scope : max;
    if (n)
        memcpy(out, ns->scope, n * sizeof *out);
    pthread_mutex_unlock(&ns->lock);
    return n;
}

static const char *
loaded_soname(const struct dl_phdr_info *info)
{
    return capsule_dyn_string(capsule_phdr_dynamic(info), info->dlpi_addr, DT_SONAME);
}

typedef struct {
    const char *soname;
    char *out;
    size_t size;
} soname_query;

static int
match_soname(struct dl_phdr_info *info, void *data)
{
    soname_query *q = data;
    const char *soname = loaded_soname(info);

    if (!soname || !info->dlpi_name || info->dlpi_name[0] != '/' ||
        strcmp(soname, q->soname) != 0)
        return 0;
    return snprintf(q->out, q->size, "%s", info->dlpi_name) < (int)q->size ? 1 : -1;
}

int
capsule_ns_find_soname(capsule_ns *ns, const char *soname, char *out, size_t size)
{
    soname_query q = { soname, out, size };

    return capsule_ns_foreach(ns, match_soname, &q) == 1 ? 0 : -1;
}

typedef struct {
    const ElfW(Dyn) *bridge;
    int (*fn)(struct dl_phdr_info *, void *);
    void *data;
} each_ctx;

static int
each_object(struct dl_phdr_info *info, size_t size, void *data)
{
    const each_ctx *c = data;

    (void)size;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC &&
            (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr) == c->bridge)
            return 0;
    }
    return c->fn(info, c->data);
}

int
capsule_ns_foreach(capsule_ns *ns, int (*fn)(struct dl_phdr_info *, void *), void *data)
{
    each_ctx c = { ns->bridge_map->l_ld, fn, data };

    return ns->iterate(each_object, &c);
}

/* ---- the glibc family: placeholders of the program's copies ---- */

static int
glibc_placed(capsule_ns *ns, const char *soname)
{
    pthread_mutex_lock(&ns->lock);
    int found = in_list(ns->glibc, ns->n_glibc, soname);
    pthread_mutex_unlock(&ns->lock);
    return found;
}

/* The program's copy of a glibc library: loaded, or loaded now (RTLD_LOCAL:
 * the program's own lookups do not change) because the capsule needs it. */
static void *
program_glibc(const char *soname)
{
    void *h = capsule_program_noload(soname, RTLD_LAZY);

    if (!h && (h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL)))
        capsule_debug(CAPSULE_DEBUG_NS, "%s: loaded into the program for the capsule", soname);
    if (!h)
        capsule_error_set("%s: the program's glibc has no such library: %s", soname, dlerror());
    return h;
}

/* Puts the placeholder of glibc library soname into the namespace once.
 * No libcapsule lock is held while ld.so runs: two threads placing one
 * soname at once load one image, which ld.so matches as one object. */
static int
place_glibc(capsule_ns *ns, const char *soname)
{
    const char *one[] = { soname, NULL };

    if (strncmp(soname, "ld-linux", 8) == 0 || glibc_placed(ns, soname))
        return 0; /* ld.so: every namespace shares the one, as a proxy */
    void *program = program_glibc(soname);
    if (!program || !capsule_placeholder_load(ns->lmid, soname, program,
                                              CAPSULE_PLACEHOLDER_GLIBC))
        return -1;
    pthread_mutex_lock(&ns->lock);
    int rc = in_list(ns->glibc, ns->n_glibc, soname)
                 ? 0
                 : add_names(&ns->glibc, &ns->n_glibc, &ns->cap_glibc, one);
    pthread_mutex_unlock(&ns->lock);
    return rc;
}

/* 1 when the program's copy of a glibc library (its dynamic section at
 * base; NULL: cannot tell) defines `version`. */
static int
glibc_defines(const ElfW(Dyn) *dynamic, ElfW(Addr) base, const char *version)
{
    return !dynamic || capsule_dyn_defines_version(dynamic, base, version);
}

typedef struct {
    const char *soname;
    const ElfW(Dyn) *dynamic;
    ElfW(Addr) base;
} loaded_query;

static int
match_loaded(struct dl_phdr_info *info, size_t size, void *data)
{
    loaded_query *q = data;
    const char *soname = loaded_soname(info);

    (void)size;
    if (!soname || strcmp(soname, q->soname) != 0)
        return 0;
    q->dynamic = capsule_phdr_dynamic(info);
    q->base = info->dlpi_addr;
    return 1;
}

/* dlopen(soname, RTLD_NOLOAD), without the file search ld.so makes when no
 * object answers to the name: ld.so matches a soname against the DT_SONAME
 * of every loaded object first, so only an object found that way is asked
 * for. NULL when the program has none (dlerror() is left alone). */
void *
capsule_program_noload(const char *soname, int flags)
{
    loaded_query q = { soname, NULL, 0 };

    if (dl_iterate_phdr(match_loaded, &q) != 1)
        return NULL;
    return dlopen(soname, flags | RTLD_NOLOAD);
}

/* The same in the namespace: dlmopen(lmid, soname, RTLD_NOLOAD). */
void *
capsule_ns_noload(capsule_ns *ns, const char *soname, int flags)
{
    char path[PATH_MAX];

    if (capsule_ns_find_soname(ns, soname, path, sizeof path) != 0)
        return NULL;
    return dlmopen(ns->lmid, soname, flags | RTLD_NOLOAD);
}

/* The program's copy of glibc library soname for the version check: 1 and
 * its dynamic section (NULL when it cannot be read) when there is one.
 * may_load: loaded now when the program has none (program_glibc); else
 * only a copy already loaded counts, found without calling into ld.so's
 * loader (the preflight runs in the middle of a dlopen's relocation). */
static int
program_glibc_copy(const char *soname, int may_load, const ElfW(Dyn) **dynamic,
                   ElfW(Addr) *base)
{
    if (!may_load) {
        loaded_query q = { soname, NULL, 0 };
        if (dl_iterate_phdr(match_loaded, &q) != 1)
            return 0;
        *dynamic = q.dynamic;
        *base = q.base;
        return 1;
    }
    void *program = program_glibc(soname);
    struct link_map *map = NULL;
    if (!program)
        return 0;
    if (dlinfo(program, RTLD_DI_LINKMAP, &map) != 0 || !map) {
        *dynamic = NULL; /* cannot tell: let ld.so decide */
        return 1;
    }
    *dynamic = map->l_ld;
    *base = map->l_addr;
    return 1;
}

/* Appends to msg (of size) what `dep` needs of glibc that the process's
 * glibc lacks; returns how many versions were missing. */
static size_t
missing_glibc(const capsule_dep *dep, int may_load, char *msg, size_t size)
{
    size_t missing = 0, len = strlen(msg);

    const char *file = NULL; /* the entries of one file come together */
    int have = 0;
    const ElfW(Dyn) *dynamic = NULL;
    ElfW(Addr) base = 0;

    for (size_t i = 0; i < dep->elf.n_verneed; i++) {
        const capsule_verneed *v = &dep->elf.verneed[i];
        if (!capsule_is_glibc_family(v->file) || strchr(v->file, '/') ||
            strncmp(v->file, "ld-linux", 8) == 0)
            continue;
        if (!file || strcmp(file, v->file) != 0)
            file = v->file, have = program_glibc_copy(v->file, may_load, &dynamic, &base);
        if (!have)
            continue; /* a library the program's glibc lacks is reported when placed */
        if (glibc_defines(dynamic, base, v->version))
            continue;
        int n = missing ? snprintf(msg + len, size - len, ", %s (%s)", v->version, v->file)
                        : snprintf(msg + len, size - len, "%s%s needs %s (%s)", len ? "; " : "",
                                   dep->path, v->version, v->file);
        len += n > 0 && (size_t)n < size - len ? (size_t)n : 0;
        missing++;
    }
    return missing;
}

/* Every glibc version the objects of `set` need must be the process's: with
 * one libc in the process, a library built against a newer glibc cannot
 * load, and ld.so would name the first one only. */
static int
check_glibc_versions(const capsule_depset *set, int may_load)
{
    char msg[1536] = "";
    size_t missing = 0;

    for (size_t d = 0; d < set->n; d++) {
        if (!set->deps[d].loaded)
            missing += missing_glibc(&set->deps[d], may_load, msg, sizeof msg);
    }
    if (!missing)
        return 0;
    return capsule_error_set("the prefix's libraries need a newer glibc than this process has "
                             "(glibc %s): %s; run the program with a glibc at least as new as "
                             "the prefix's, as container runtimes do when the host's is newer",
                             gnu_get_libc_version(), msg);
}

int
capsule_ns_check_glibc_loaded(const capsule_depset *set)
{
    return check_glibc_versions(set, 0);
}

int
capsule_ns_place_needed(capsule_ns *ns, const capsule_depset *set)
{
    if (check_glibc_versions(set, 1) != 0)
        return -1;
    for (size_t d = 0; d < set->n; d++) {
        const capsule_elffile *elf = &set->deps[d].elf;
        for (size_t i = 0; i < elf->n_needed; i++) {
            if (capsule_is_glibc_family(elf->needed[i]) && !strchr(elf->needed[i], '/') &&
                place_glibc(ns, elf->needed[i]) != 0)
                return -1;
        }
    }
    return 0;
}

typedef struct {
    char **names;
    size_t n, cap;
} name_list;

static int
collect_program_glibc(struct dl_phdr_info *info, size_t size, void *data)
{
    name_list *l = data;
    const char *soname = loaded_soname(info);
    char *copy;

    (void)size;
    if (soname && capsule_is_glibc_family(soname) &&
        capsule_grow((void **)&l->names, &l->cap, l->n, sizeof *l->names) == 0 &&
        (copy = strdup(soname)))
        l->names[l->n++] = copy;
    return 0;
}

/* Objects ld.so finds by itself (the `exclude` sonames, from the host's
 * search path) need glibc libraries nobody has read them for: every one the
 * program has is placed, which costs no load in the program. */
static int
place_program_glibc(capsule_ns *ns)
{
    name_list l = { 0 };
    int rc = 0;

    dl_iterate_phdr(collect_program_glibc, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (rc == 0)
            rc = place_glibc(ns, l.names[i]);
        free(l.names[i]);
    }
    free(l.names);
    return rc;
}

void *
capsule_ns_glibc(capsule_ns *ns, const char *file, int flags)
{
    const char *base = strrchr(file, '/');

    base = base ? base + 1 : file;
    if (place_glibc(ns, base) != 0) {
        /* glibc's dlerror() should say why: ask it for a path that cannot exist. */
        char path[1024];
        snprintf(path, sizeof path, "%s (capsule: %s)", file, capsule_error());
        return dlmopen(ns->lmid, path, RTLD_LAZY);
    }
    return dlmopen(ns->lmid, base, (flags & ~RTLD_GLOBAL) | RTLD_NOLOAD);
}

int
capsule_ns_excluded_host(capsule_ns *ns)
{
    return place_program_glibc(ns);
}
