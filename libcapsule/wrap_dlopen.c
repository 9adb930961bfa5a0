/* dlopen on both sides of the capsule boundary.
 *
 * Inside: a name resolves under the capsule's prefix as at the initial load
 * (bare sonames through the prefix's search rules with the caller's
 * DT_RPATH/DT_RUNPATH; absolute paths re-rooted into the prefix; the glibc
 * family and excluded sonames from the host), dependencies leaves first,
 * into the capsule's namespace. An object already loaded there is reopened
 * without resolving anything (as ld.so matches loaded objects first), and a
 * resolution that loaded is reused while its files are unchanged (reuse.c).
 * RTLD_GLOBAL cannot be given to a namespace other than the default one
 * (glibc crashes or refuses): the object is opened RTLD_LOCAL and, while it
 * stays loaded, is part of the capsule's own scope that dlsym(RTLD_DEFAULT)
 * and dlsym(dlopen(NULL)) search from inside (objects loaded later do not
 * bind to it at relocation time). dlopen(NULL) inside returns a handle on
 * that scope.
 *
 * Outside: glibc's own dlopen and dlmopen, entered with the caller's return
 * address (see below); the relocation pass over what they loaded runs at
 * the next outside dl* call. */
#define _GNU_SOURCE
#include "wrappers.h"

#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datacopy.h"
#include "debug.h"
#include "dynobj.h"
#include "forklock.h"
#include "nsmap.h"
#include "reloc.h"
#include "resolve.h"
#include "reuse.h"
#include "trampoline.h"
#include "unwinder.h"

#define MAX_TEMPS 256

size_t
capsule_wrap_bridge_entries(capsule_ns *ns, capsule_bridge_entry *out, size_t max)
{
    const capsule_bridge_entry entries[] = {
        { "dlopen", (const void *)capsule_entry_inside_dlopen, ns },
        { "dlsym", (const void *)capsule_entry_inside_dlsym, ns },
        { "dlvsym", (const void *)capsule_entry_inside_dlvsym, ns },
    };
    size_t n = sizeof entries / sizeof entries[0];

    if (n > max)
        n = max;
    memcpy(out, entries, n * sizeof *out);
    return n;
}

/* ---- inside ---- */

static int
loaded_in_ns_fn(void *ns, const char *soname, char *out, size_t size)
{
    return capsule_ns_find_soname(ns, soname, out, size);
}

static const char *
requester_in_prefix(const char *prefix, const void *caller, const struct link_map **map_out)
{
    struct link_map *map = NULL;
    Dl_info info;
    size_t len = strlen(prefix);

    *map_out = NULL;
    while (len > 1 && prefix[len - 1] == '/')
        len--;
    if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_name)
        return NULL;
    if (strncmp(map->l_name, prefix, len) != 0 || map->l_name[len] != '/')
        return NULL;
    *map_out = map;
    return map->l_name + len;
}

#define MAX_NEEDED 128

/* The DT_NEEDED strings of a loaded object, in order, into out[0..max);
 * returns how many it has (more than max: out holds the first max). */
static size_t
needed_of(const struct link_map *map, const char **out, size_t max)
{
    const char *strtab = NULL;
    size_t strsz = 0, n = 0;

    for (const ElfW(Dyn) *d = map->l_ld; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB)
            strtab = (const char *)(d->d_un.d_ptr < map->l_addr ? d->d_un.d_ptr + map->l_addr
                                                                : d->d_un.d_ptr);
        else if (d->d_tag == DT_STRSZ)
            strsz = d->d_un.d_val;
    }
    for (const ElfW(Dyn) *d = map->l_ld; strtab && d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag != DT_NEEDED || d->d_un.d_val >= strsz ||
            !memchr(strtab + d->d_un.d_val, '\0', strsz - d->d_un.d_val))
            continue;
        if (n < max)
            out[n] = strtab + d->d_un.d_val;
        n++;
    }
    return n;
}

/* Resolves root as the loaded requester (its map; NULL: none) would find
 * it. The requester is described from memory (its path, and the strings of
 * its dynamic section ld.so mapped), not read from its file again; only
 * objects libcapsule loaded from the prefix by their resolved paths are
 * requesters. */
static int
resolve_for(const char *prefix, const char *root, const char *requester,
            const struct link_map *map, char **exclude, capsule_ns *ns, capsule_depset *set)
{
    if (!requester || !map)
        return capsule_resolve_from(prefix, root, NULL, (const char *const *)exclude,
                                    loaded_in_ns_fn, ns, set);
    capsule_requester req = {
        .path = map->l_name,
        .in_prefix = requester,
        .soname = capsule_dyn_string(map->l_ld, map->l_addr, DT_SONAME),
        .rpath = capsule_dyn_string(map->l_ld, map->l_addr, DT_RPATH),
        .runpath = capsule_dyn_string(map->l_ld, map->l_addr, DT_RUNPATH),
    };
    const char *needed[MAX_NEEDED];
    req.needed = needed;
    req.n_needed = needed_of(map, needed, MAX_NEEDED);
    if (req.n_needed > MAX_NEEDED) /* more than kept here: read from its file */
        return capsule_resolve_from(prefix, root, requester, (const char *const *)exclude,
                                    loaded_in_ns_fn, ns, set);
    return capsule_resolve_loaded_from(prefix, root, &req, (const char *const *)exclude,
                                       loaded_in_ns_fn, ns, set);
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
static int
match_name(struct dl_phdr_info *info, void *data)
{
    return info->dlpi_name && strcmp(info->dlpi_name, data) == 0;
}

/* 1 when an object of the namespace is named path: only then does
 * dlmopen(path, RTLD_NOLOAD) find it without opening the file to compare
 * it with every loaded object (what ld.so does for a name it does not know). */
static int
named_in_ns(capsule_ns *ns, const char *path)
{
    return capsule_ns_foreach(ns, match_name, (void *)path) == 1;
}

static void *
reopen_loaded(capsule_ns *ns, const char *root, int flags)
{
    char path[PATH_MAX * 2];
    void *h;

    if (root[0] == '/') {
        /* Objects from the prefix are loaded by their resolved paths: a
         * path naming one is that object, with no walk of its components. */
        const char *prefix = capsule_ns_prefix(ns);
        size_t plen = strlen(prefix);
        while (plen > 1 && prefix[plen - 1] == '/')
            plen--;
        if ((snprintf(path, sizeof path, "%.*s%s", (int)plen, prefix, root) >= (int)sizeof path ||
             !named_in_ns(ns, path)) &&
            (capsule_path_in_prefix(prefix, root, path, sizeof path, NULL, 0) != 0 ||
             !named_in_ns(ns, path)))
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

/* The load plan of a resolved set: its objects leaves first (but `skip`),
 * the root last (index[] gets their places in the set). NULL when out of
 * memory. */
static char **
plan_of(const capsule_depset *set, size_t root, size_t skip, size_t *n, size_t **index)
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
        if (i < set->n_order && (d == root || d == skip))
            continue;
        (*index)[*n] = d;
        if (!(plan[(*n)++] = strdup(set->deps[d].path))) {
            capsule_plan_free(plan, *n);
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

/* The plan remembered for root, loaded again; NULL (the entry dropped) when
 * there is none or it no longer loads. */
static void *
open_reused(capsule_ns *ns, const char *file, const char *root, const char *requester,
            size_t n_exclude, int flags)
{
    double t0 = capsule_debug_now_us();
    size_t n;
    char **plan = capsule_reuse_plan(ns, root, requester, n_exclude, &n);

    if (!plan)
        return NULL;
    double t1 = capsule_debug_now_us();
    void *h = load_paths(capsule_ns_lmid(ns), plan, n, flags);
    capsule_debug(CAPSULE_DEBUG_TIME, "inside dlopen %s: cached %.0f us, load %.0f us", file,
                  t1 - t0, capsule_debug_now_us() - t1);
    if (h) {
        capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s -> %s (cached)", file, plan[n - 1]);
    } else {
        (void)dlerror(); /* resolved afresh next, which says why if it fails again */
        capsule_reuse_forget(ns, root, requester);
    }
    capsule_plan_free(plan, n);
    return h;
}

static void *open_resolved_again(capsule_ns *ns, const char *file, const char *root,
                                 const char *requester, const struct link_map *requester_map,
                                 int flags);

/* Resolves root under the prefix, loads it leaves first and remembers the
 * plan when it loaded. */
static void *
open_resolved(capsule_ns *ns, const char *file, const char *root, const char *requester,
              const struct link_map *requester_map, char **exclude, size_t n_exclude, int flags)
{
    const char *prefix = capsule_ns_prefix(ns);
    double t0 = capsule_debug_now_us();
    capsule_depset set;
    size_t *index, n;
    char **plan;

    if (resolve_for(prefix, root, requester, requester_map, exclude, ns, &set) != 0)
        return not_found(capsule_ns_lmid(ns), prefix, file, capsule_error());
    size_t d = capsule_depset_find(&set, root);
    if (d == CAPSULE_NO_PARENT) {
        capsule_depset_free(&set);
        return not_found(capsule_ns_lmid(ns), prefix, file, "not resolved");
    }
    int unwinder = capsule_ns_share_unwinder(ns, &set);
    size_t skip = CAPSULE_NO_PARENT;
    if (unwinder < 0) {
        capsule_depset_free(&set);
        return not_found(capsule_ns_lmid(ns), prefix, file, capsule_error());
    }
    if (unwinder > 0) {
        /* The program's libgcc_s stands in for the prefix's from now on: the
         * plan leaves the prefix's out (it needs only glibc) and is
         * remembered under the exclusion list that now includes it. */
        skip = capsule_depset_find(&set, CAPSULE_UNWINDER_SONAME);
        char **now = capsule_ns_exclude_list(ns);
        if (skip == d || !now) {
            free(now);
            capsule_depset_free(&set);
            return open_resolved_again(ns, file, root, requester, requester_map, flags);
        }
        n_exclude = count(now);
        free(now);
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "inside dlopen %s -> %s", file, set.deps[d].path);
    if (!(plan = plan_of(&set, d, skip, &n, &index))) {
        capsule_depset_free(&set);
        return not_found(capsule_ns_lmid(ns), prefix, file, "out of memory");
    }
    double t1 = capsule_debug_now_us();
    void *h = NULL;
    if (capsule_ns_place_needed(ns, &set) == 0)
        h = load_paths(capsule_ns_lmid(ns), plan, n, flags);
    else
        h = not_found(capsule_ns_lmid(ns), prefix, file, capsule_error());
    capsule_debug(CAPSULE_DEBUG_TIME, "inside dlopen %s: resolve %.0f us, load %.0f us", file,
                  t1 - t0, capsule_debug_now_us() - t1);
    if (h && !(flags & RTLD_NOLOAD)) {
        capsule_reuse_remember(ns, root, requester, n_exclude, &set, plan, n, index);
    } else {
        capsule_plan_free(plan, n);
    }
    free(index);
    capsule_depset_free(&set);
    return h;
}

/* Once more, without the sonames the namespace shares since (libgcc_s). */
static void *
open_resolved_again(capsule_ns *ns, const char *file, const char *root, const char *requester,
                    const struct link_map *requester_map, int flags)
{
    char **exclude = capsule_ns_exclude_list(ns);

    if (!exclude)
        return not_found(capsule_ns_lmid(ns), capsule_ns_prefix(ns), file, "out of memory");
    void *h = open_resolved(ns, file, root, requester, requester_map, exclude, count(exclude),
                            flags);
    free(exclude);
    return h;
}

/* dlopen inside for a name not taken from the host: an object already
 * loaded, else a remembered plan, else a fresh resolution. */
static void *
open_in_prefix(capsule_ns *ns, const char *file, int flags, const void *caller)
{
    const char *prefix = capsule_ns_prefix(ns), *root = file;
    size_t plen = strlen(prefix);
    void *h;

    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    if (file[0] == '/' && strncmp(file, prefix, plen) == 0 && file[plen] == '/')
        root = file + plen; /* already a path inside the prefix */
    if ((h = reopen_loaded(ns, root, flags)))
        return h;
    const struct link_map *requester_map;
    const char *requester = requester_in_prefix(prefix, caller, &requester_map);
    char **exclude = capsule_ns_exclude_list(ns);
    size_t n_exclude = count(exclude);
    if (!(flags & RTLD_NOLOAD))
        h = open_reused(ns, file, root, requester, n_exclude, flags);
    if (!h)
        h = open_resolved(ns, file, root, requester, requester_map, exclude, n_exclude, flags);
    free(exclude);
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
    else if (capsule_is_glibc_family(file) && (!strchr(file, '/') || file[0] == '/'))
        h = capsule_ns_glibc(ns, file, flags); /* the placeholder of the program's copy */
    else if (taken_from_host(ns, file))
        h = capsule_ns_excluded_host(ns) == 0 ? dlmopen(lmid, file, flags) : NULL;
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

/* The program's dlopen and dlmopen are glibc's own, entered by a jump from
 * trampoline.c with the caller's return address: glibc finds its caller
 * from that address (its namespace, $ORIGIN, $LIB and $PLATFORM in the
 * name, the RPATH chain of its loaders and the executable, its RUNPATH,
 * LD_LIBRARY_PATH as read at start-up), so the search is glibc's, exactly
 * as without capsules. Nothing runs after the load: the relocation pass
 * over what it loaded runs at the start of the next outside dl* call
 * (dlopen, dlmopen, dlsym, dlvsym) and at every capsule set-up, when ld.so
 * loaded or unloaded anything since the last pass. Until then the new
 * objects' calls into a shim reach its stubs, which jump to the real code:
 * the same behaviour, one jump slower. What differs in that window: a
 * variable a shim exports, read through such an object's own slot, is the
 * shim's placeholder, and the addresses it takes of shim functions are the
 * stubs (a dlsym in between, the usual way to reach a new object, closes
 * the window first). */

void
capsule_outside_catch_up(void)
{
    if (capsule_reloc_catch_up() != 0) {
        char line[1200];
        int n = snprintf(line, sizeof line, "capsule: relocation pass after dlopen: %s\n",
                         capsule_error());
        if (n > 0 && write(STDERR_FILENO, line, strlen(line)) < 0)
            return;
    }
}

void *
capsule_outside_dlopen_prepare(void)
{
    capsule_outside_catch_up();
    return (void *)dlopen;
}

void *
capsule_outside_dlmopen_prepare(void)
{
    capsule_outside_catch_up();
    return (void *)dlmopen;
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

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&install_lock, CAPSULE_LOCK_WRAP);
}

int
capsule_wrap_install(void)
{
    static const capsule_policy policy = { "dl* wrappers", hook_lookup, NULL };
    static int installed;
    int rc = 0;

    pthread_mutex_lock(&install_lock);
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
    pthread_mutex_unlock(&install_lock);
    return rc;
}
