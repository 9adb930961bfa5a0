#define _GNU_SOURCE
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debug.h"
#include "elfarch.h"
#include "forklock.h"
#include "ldcache.h"
#include "plancache.h"

#define MAX_SYMLINKS 40
#define MAX_DEPTH 256

enum { VISITING = 1, DONE = 2 };

static const char *const glibc_family[] = {
    "libc.so.6", "libdl.so.2", "libpthread.so.0", "libm.so.6", "librt.so.1",
    "libresolv.so.2", "libutil.so.1", "libanl.so.1", "libnsl.so.1", "libmvec.so.1",
    "libBrokenLocale.so.1", "libc_malloc_debug.so.0", "libthread_db.so.1",
    CAPSULE_LDSO_SONAME, NULL,
};

static const char *const standard_dirs[] = {
    "/lib/" CAPSULE_TRIPLET, "/usr/lib/" CAPSULE_TRIPLET, CAPSULE_WORD_DIRS, "/lib", "/usr/lib",
    NULL,
};

int
capsule_is_glibc_family(const char *soname)
{
    const char *base = strrchr(soname, '/');

    base = base ? base + 1 : soname;
    if (strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "libnss_", 7) == 0)
        return 1;
    for (size_t i = 0; glibc_family[i]; i++) {
        if (strcmp(base, glibc_family[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- symlinks confined to the prefix ---- */

static size_t
prefix_len(const char *prefix)
{
    size_t len = strlen(prefix);

    while (len > 0 && prefix[len - 1] == '/')
        len--;
    return len;
}

/* Directories inside the prefix already seen to be real directories (no
 * symlink) during one resolution: every candidate of a search lies in the
 * same few directories, whose components need one lstat each, not one per
 * candidate. A tree changed during the resolution is seen as it was. */
#define MEMO_DIRS 32

typedef struct {
    char *dirs[MEMO_DIRS];
    size_t n;
} dir_memo;

static int
memo_has(const dir_memo *m, const char *dir)
{
    for (size_t i = 0; m && i < m->n; i++) {
        if (strcmp(m->dirs[i], dir) == 0)
            return 1;
    }
    return 0;
}

static void
memo_add(dir_memo *m, const char *dir)
{
    if (m && m->n < MEMO_DIRS && (m->dirs[m->n] = strdup(dir)))
        m->n++;
}

static void
memo_free(dir_memo *m)
{
    while (m->n > 0)
        free(m->dirs[--m->n]);
}

/* The walk's buffers: 24 KiB, on the heap rather than the stack (set-ups
 * run on the program's threads, whose stack pages stay dirty once used). */
typedef struct {
    char cur[PATH_MAX], rest[PATH_MAX], host[PATH_MAX * 2], target[PATH_MAX], next[PATH_MAX];
} walk_buffers;

static int walk_in_prefix(const char *prefix, const char *path, char *out, size_t out_size,
                          char *in_prefix, size_t in_size, dir_memo *memo, walk_buffers *b);

static int
path_in_prefix(const char *prefix, const char *path, char *out, size_t out_size,
               char *in_prefix, size_t in_size, dir_memo *memo)
{
    walk_buffers *b = malloc(sizeof *b);

    if (!b)
        return capsule_error_set("out of memory");
    b->cur[0] = '\0';
    int rc = walk_in_prefix(prefix, path, out, out_size, in_prefix, in_size, memo, b);
    free(b);
    return rc;
}

static int
walk_in_prefix(const char *prefix, const char *path, char *out, size_t out_size,
               char *in_prefix, size_t in_size, dir_memo *memo, walk_buffers *b)
{
    char *cur = b->cur, *rest = b->rest, *host = b->host, *target = b->target;
    size_t plen = prefix_len(prefix);
    int links = 0;

    if (snprintf(rest, sizeof b->rest, "%s", path) >= (int)sizeof b->rest)
        return capsule_error_set("%s: path too long", path);
    for (char *p = rest; *p;) {
        p += strspn(p, "/");
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        char *comp = p;
        p += len;
        if (len == 1 && comp[0] == '.')
            continue;
        if (len == 2 && comp[0] == '.' && comp[1] == '.') {
            char *slash = strrchr(cur, '/');
            if (slash)
                *slash = '\0';
            continue;
        }
        size_t clen = strlen(cur);
        if (clen + 1 + len >= sizeof b->cur)
            return capsule_error_set("%s: path too long", path);
        cur[clen] = '/';
        memcpy(cur + clen + 1, comp, len);
        cur[clen + 1 + len] = '\0';

        struct stat st;
        if (memo_has(memo, cur))
            continue;
        if (snprintf(host, sizeof b->host, "%.*s%s", (int)plen, prefix, cur) >= (int)sizeof b->host)
            return capsule_error_set("%s: path too long", path);
        if (lstat(host, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && *p)
            memo_add(memo, cur);
        if (!S_ISLNK(st.st_mode))
            continue;
        if (++links > MAX_SYMLINKS)
            return capsule_error_set("%s: too many levels of symbolic links", path);
        ssize_t n = readlink(host, target, sizeof b->target - 1);
        if (n < 0)
            return capsule_error_set("%s: %s", host, strerror(errno));
        target[n] = '\0';
        if (target[0] == '/')
            cur[0] = '\0';
        else
            *strrchr(cur, '/') = '\0';
        char *next = b->next;
        if (snprintf(next, sizeof b->next, "%s/%s", target, p) >= (int)sizeof b->next)
            return capsule_error_set("%s: path too long", path);
        strcpy(rest, next);
        p = rest;
    }
    if (snprintf(out, out_size, "%.*s%s", (int)plen, prefix, cur[0] ? cur : "/") >= (int)out_size)
        return capsule_error_set("%s: path too long", path);
    if (in_prefix && snprintf(in_prefix, in_size, "%s", cur[0] ? cur : "/") >= (int)in_size)
        return capsule_error_set("%s: path too long", path);
    return 0;
}

int
capsule_path_in_prefix(const char *prefix, const char *path, char *out, size_t out_size,
                       char *in_prefix, size_t in_size)
{
    return path_in_prefix(prefix, path, out, out_size, in_prefix, in_size, NULL);
}

/* ---- the prefixes' ld.so.cache, parsed once per process ----
 *
 * Every resolution under a prefix searches its ld.so.cache; the parse is
 * kept and used again while stat() of prefix/etc/ld.so.cache gives the
 * same device, inode, size and modification time (ldconfig writes a new
 * file and renames it over the old one). A cache that is absent or cannot
 * be used is not kept: it is looked for, and reported, every time. */
typedef struct shared_ldcache {
    struct shared_ldcache *next;
    char *prefix;
    capsule_stamp stamp;
    capsule_ldcache *cache;
    unsigned users;    /* resolutions using it now */
    int replaced;      /* out of the list: freed by its last user */
} shared_ldcache;

static pthread_mutex_t ldcache_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_ldcache *ldcaches;
/* Set by libcapsule's constructors: before they ran (a preflight inside
 * the dlopen that loads libcapsule), nothing is kept, since a dlopen that
 * fails unloads libcapsule without running its destructors. */
static int may_keep;

__attribute__((constructor)) static void
register_ldcache_lock(void)
{
    capsule_forklock_add(&ldcache_lock, CAPSULE_LOCK_LDCACHE);
    __atomic_store_n(&may_keep, 1, __ATOMIC_RELEASE);
}

static void
shared_ldcache_free(shared_ldcache *e)
{
    capsule_ldcache_close(e->cache);
    free(e->prefix);
    free(e);
}

/* The cache of prefix and its stamp (for capsule_depset.ldcache); NULL for
 * none. Released with release_ldcache(*held). */
static capsule_ldcache *
acquire_ldcache(const char *prefix, capsule_stamp *stamp, shared_ldcache **held)
{
    char path[PATH_MAX * 2], cache_path[PATH_MAX * 2];
    capsule_ldcache *cache = NULL;
    size_t plen = prefix_len(prefix);

    *held = NULL;
    memset(stamp, 0, sizeof *stamp);
    if (snprintf(path, sizeof path, "%.*s/etc/ld.so.cache", (int)plen, prefix) <
        (int)sizeof path)
        capsule_stamp_path(path, stamp);
    if (stamp->present) {
        pthread_mutex_lock(&ldcache_lock);
        for (shared_ldcache *e = ldcaches; e; e = e->next) {
            if (strcmp(e->prefix, prefix) == 0 && capsule_stamp_same(&e->stamp, stamp)) {
                e->users++;
                *held = e;
                break;
            }
        }
        pthread_mutex_unlock(&ldcache_lock);
        if (*held)
            return (*held)->cache;
    }
    /* A cache that cannot be used (a symlink loop, unreadable, corrupt) is
     * ignored, as ld.so ignores a bad one: the directories still work. */
    if (capsule_path_in_prefix(prefix, "/etc/ld.so.cache", cache_path, sizeof cache_path, NULL,
                               0) != 0 ||
        capsule_ldcache_open(cache_path, &cache) < 0)
        capsule_debug(CAPSULE_DEBUG_LDCACHE, "ignoring %s", capsule_error());
    shared_ldcache *fresh = cache && stamp->present && __atomic_load_n(&may_keep, __ATOMIC_ACQUIRE)
                                ? calloc(1, sizeof *fresh)
                                : NULL;
    if (fresh && !(fresh->prefix = strdup(prefix))) {
        free(fresh);
        fresh = NULL;
    }
    if (!fresh)
        return cache; /* the caller's alone: closed by release_ldcache(NULL, cache) */
    fresh->stamp = *stamp;
    fresh->cache = cache;
    fresh->users = 1;
    pthread_mutex_lock(&ldcache_lock);
    for (shared_ldcache **p = &ldcaches; *p;) {
        shared_ldcache *e = *p;
        if (strcmp(e->prefix, prefix) != 0) {
            p = &e->next;
            continue;
        }
        *p = e->next; /* replaced: the file changed */
        e->replaced = 1;
        if (e->users == 0)
            shared_ldcache_free(e);
    }
    fresh->next = ldcaches;
    ldcaches = fresh;
    pthread_mutex_unlock(&ldcache_lock);
    *held = fresh;
    return cache;
}

/* libcapsule unloaded (a dlopen the preflight failed takes it along) or
 * the process exiting: what no resolution uses is freed, the rest by its
 * last user. */
__attribute__((destructor)) static void
drop_ldcaches(void)
{
    pthread_mutex_lock(&ldcache_lock);
    while (ldcaches) {
        shared_ldcache *e = ldcaches;
        ldcaches = e->next;
        e->replaced = 1;
        if (e->users == 0)
            shared_ldcache_free(e);
    }
    pthread_mutex_unlock(&ldcache_lock);
}

static void
release_ldcache(shared_ldcache *held, capsule_ldcache *cache)
{
    if (!held) {
        capsule_ldcache_close(cache);
        return;
    }
    pthread_mutex_lock(&ldcache_lock);
    int gone = --held->users == 0 && held->replaced;
    pthread_mutex_unlock(&ldcache_lock);
    if (gone)
        shared_ldcache_free(held);
}

/* ---- searching one soname ---- */

typedef struct {
    const char *prefix;
    const char *const *exclude;
    capsule_loaded_fn loaded;
    void *loaded_ctx;
    capsule_ldcache *cache;
    capsule_depset *set;
    dir_memo dirs;
    int root_fd;        /* the prefix, for openat2; -1: walk_in_prefix instead */
    int unkeepable;     /* a candidate passed over could not be noted */
    char skipped[512];  /* why the last rejected candidate was rejected */
} resolver;

typedef struct {
    char path[PATH_MAX * 2];
    char in_prefix[PATH_MAX];
    char found_as[PATH_MAX];
    capsule_elffile elf;
} candidate;

/* openat2 in this process: 0 not known yet, 1 used, -1 not (refused once,
 * or under valgrind). */
static int openat2_state;

static int
is_valgrind_core(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    return info->dlpi_name && strstr(info->dlpi_name, "/vgpreload_core-") != NULL;
}

/* Valgrind before 3.21 does not know openat2: it fails it with ENOSYS, which
 * the walk covers, but first prints five lines on the program's stderr.
 * Valgrind's core always preloads its vgpreload_core library (looked for
 * among the loaded objects: the environment may have been cleared). */
static int
openat2_usable(void)
{
    int state = __atomic_load_n(&openat2_state, __ATOMIC_RELAXED);

    if (state == 0) {
        state = dl_iterate_phdr(is_valgrind_core, NULL) ? -1 : 1;
        __atomic_store_n(&openat2_state, state, __ATOMIC_RELAXED);
    }
    return state > 0;
}

/* Opens in_path with the prefix as the root directory: openat2's
 * RESOLVE_IN_ROOT resolves every symlink and ".." as walk_in_prefix does,
 * in one system call instead of an lstat per component and a readlink per
 * link, and /proc/self/fd names the file it reached. Returns 0 (open, and
 * path, in_prefix set: as candidate's), 1 when there is no such file (or a symlink
 * loop), -1 for another failure (an error set), 2 when this way is not
 * available (a kernel before 5.6, a seccomp filter, no /proc): then the
 * walk, from now on. */
static int
open_in_root(resolver *r, const char *in_path, char *path, size_t path_size, char *in_prefix,
             size_t in_size, int *fd)
{
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    size_t plen = prefix_len(r->prefix);
    char proc[64];

    while (*in_path == '/')
        in_path++;
    *fd = (int)syscall(SYS_openat2, r->root_fd, *in_path ? in_path : ".", &how, sizeof how);
    if (*fd < 0) {
        int err = errno;
        if (err == ENOSYS || err == EPERM || err == EINVAL || err == E2BIG) {
            __atomic_store_n(&openat2_state, -1, __ATOMIC_RELAXED);
            close(r->root_fd);
            r->root_fd = -1;
            return 2;
        }
        capsule_error_set("%.*s/%s: %s", (int)plen, r->prefix, in_path, strerror(err));
        return err == ENOENT || err == ENOTDIR || err == ELOOP ? 1 : -1;
    }
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", *fd);
    ssize_t n = readlink(proc, path, path_size - 1);
    if (n > 0 && (size_t)n < path_size - 1) {
        path[n] = '\0';
        if (strncmp(path, r->prefix, plen) == 0 && path[plen] == '/' &&
            snprintf(in_prefix, in_size, "%s", path + plen) < (int)in_size)
            return 0;
    }
    close(*fd);
    close(r->root_fd);
    r->root_fd = -1;
    return 2;
}

/* The library at in_path, read: CAPSULE_ELF_* as capsule_elffile_read. */
static int
read_candidate(resolver *r, const char *in_path, candidate *c)
{
    int fd = -1, how = 2;

    if (r->root_fd >= 0)
        how = open_in_root(r, in_path, c->path, sizeof c->path, c->in_prefix,
                           sizeof c->in_prefix, &fd);

    if (how == 0)
        return capsule_elffile_read_fd(fd, c->path, &c->elf);
    if (how == 1)
        return CAPSULE_ELF_MISSING;
    if (how < 0)
        return CAPSULE_ELF_BAD;
    if (path_in_prefix(r->prefix, in_path, c->path, sizeof c->path, c->in_prefix,
                       sizeof c->in_prefix, &r->dirs) != 0)
        return CAPSULE_ELF_MISSING;
    return capsule_elffile_read(c->path, &c->elf);
}

/* A candidate passed over, remembered with what it was (nothing, for a
 * missing one) so that a kept resolution sees it change (plancache.c). */
static void
note_probe(resolver *r, const char *in_path, int rc)
{
    capsule_depset *set = r->set;
    char path[PATH_MAX * 2];
    size_t plen = prefix_len(r->prefix);

    if (snprintf(path, sizeof path, "%.*s%s%s", (int)plen, r->prefix, in_path[0] == '/' ? "" : "/",
                 in_path) >= (int)sizeof path) {
        r->unkeepable = 1;
        return;
    }
    for (size_t i = 0; i < set->n_probes; i++) {
        if (strcmp(set->probes[i].path, path) == 0)
            return;
    }
    if (capsule_grow((void **)&set->probes, &set->probe_cap, set->n_probes,
                     sizeof *set->probes) != 0 ||
        !(set->probes[set->n_probes].path = strdup(path))) {
        r->unkeepable = 1;
        return;
    }
    capsule_probe *p = &set->probes[set->n_probes++];
    memset(&p->stamp, 0, sizeof p->stamp);
    if (rc != CAPSULE_ELF_MISSING)
        capsule_stamp_path(path, &p->stamp);
}

/* 0 when `in_path` (inside the prefix) is a usable library, 1 when not. */
static int
try_candidate(resolver *r, const char *in_path, candidate *c)
{
    int rc = read_candidate(r, in_path, c);
    if (rc != CAPSULE_ELF_OK)
        note_probe(r, in_path, rc);
    if (rc == CAPSULE_ELF_OK) {
        snprintf(c->found_as, sizeof c->found_as, "%s", in_path); /* fits: in_path did */
        capsule_debug(CAPSULE_DEBUG_SEARCH, "  %s -> %s: found", in_path, c->path);
        return 0;
    }
    capsule_debug(CAPSULE_DEBUG_SEARCH, "  %s: %s", in_path, capsule_error());
    if (rc != CAPSULE_ELF_MISSING)
        snprintf(r->skipped, sizeof r->skipped, "%s", capsule_error());
    return 1;
}

/* Matches $NAME or ${NAME} at s; sets *skip to its length. */
static int
match_token(const char *s, size_t len, const char *name, size_t *skip)
{
    size_t n = strlen(name);

    if (len >= n + 3 && s[1] == '{' && strncmp(s + 2, name, n) == 0 && s[n + 2] == '}') {
        *skip = n + 3;
        return 1;
    }
    if (len >= n + 1 && strncmp(s + 1, name, n) == 0 &&
        (len == n + 1 || !(s[n + 1] == '_' || (s[n + 1] >= 'A' && s[n + 1] <= 'Z') ||
                           (s[n + 1] >= 'a' && s[n + 1] <= 'z') ||
                           (s[n + 1] >= '0' && s[n + 1] <= '9')))) {
        *skip = n + 1;
        return 1;
    }
    return 0;
}

/* Expands $ORIGIN, $LIB and $PLATFORM in one search-path entry; -1 when the
 * entry uses an unknown token or does not fit. */
int
capsule_expand_search_entry(const char *entry, size_t len, const char *origin, char *out,
                            size_t size)
{
    const char *names[] = { "ORIGIN", "LIB", "PLATFORM" };
    const char *vals[] = { origin, CAPSULE_LIB_DIR, CAPSULE_PLATFORM };
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        const char *val = NULL;
        size_t skip = 1;
        if (entry[i] == '$') {
            for (size_t t = 0; t < 3 && !val; t++) {
                if (match_token(entry + i, len - i, names[t], &skip))
                    val = vals[t];
            }
            if (!val)
                return -1;
        }
        size_t vlen = val ? strlen(val) : 1;
        if (o + vlen + 1 > size)
            return -1;
        memcpy(out + o, val ? val : entry + i, vlen);
        o += vlen;
        i += skip;
    }
    out[o] = '\0';
    return 0;
}

/* Tries soname in every directory of a colon-separated search path. */
static int
try_search_path(resolver *r, const char *list, const char *origin, const char *soname,
                candidate *c)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ":");
        if (len > 0 && capsule_expand_search_entry(p, len, origin, dir, sizeof dir) == 0 &&
            dir[0] == '/' &&
            snprintf(path, sizeof path, "%s/%s", dir, soname) < (int)sizeof path &&
            try_candidate(r, path, c) == 0)
            return 0;
        p += len;
        p += (*p == ':');
    }
    return 1;
}

static int
cache_entry(const char *soname, const char *path, void *data)
{
    void **args = data;
    (void)soname;
    return try_candidate(args[0], path, args[1]) == 0;
}

static void
origin_of(const capsule_dep *d, char *out, size_t size)
{
    snprintf(out, size, "%s", d->in_prefix);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else
        snprintf(out, size, "/");
}

/* The search order of ld.so, inside the prefix: DT_RPATH of the requester
 * and its loaders (unless the requester has DT_RUNPATH), DT_RUNPATH,
 * ld.so.cache, the standard directories. */
static int
find_library(resolver *r, const char *soname, size_t requester, candidate *c)
{
    char origin[PATH_MAX], path[PATH_MAX * 2];
    capsule_dep *deps = r->set->deps;

    r->skipped[0] = '\0';
    capsule_debug(CAPSULE_DEBUG_SEARCH, "searching %s", soname);
    if (strchr(soname, '/'))
        return try_candidate(r, soname, c);
    if (requester == CAPSULE_NO_PARENT || !deps[requester].elf.runpath) {
        for (size_t l = requester; l != CAPSULE_NO_PARENT; l = deps[l].parent) {
            if (!deps[l].elf.rpath || deps[l].elf.runpath)
                continue;
            origin_of(&deps[l], origin, sizeof origin);
            if (try_search_path(r, deps[l].elf.rpath, origin, soname, c) == 0)
                return 0;
        }
    }
    if (requester != CAPSULE_NO_PARENT && deps[requester].elf.runpath) {
        origin_of(&deps[requester], origin, sizeof origin);
        if (try_search_path(r, deps[requester].elf.runpath, origin, soname, c) == 0)
            return 0;
    }
    if (r->cache) {
        void *args[2] = { r, c };
        if (capsule_ldcache_foreach(r->cache, soname, cache_entry, args))
            return 0;
    }
    for (size_t i = 0; standard_dirs[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", standard_dirs[i], soname);
        if (try_candidate(r, path, c) == 0)
            return 0;
    }
    return 1;
}

/* ---- the dependency graph ---- */

static int
excluded(const resolver *r, const char *soname)
{
    if (capsule_is_glibc_family(soname))
        return 1;
    for (size_t i = 0; r->exclude && r->exclude[i]; i++) {
        if (strcmp(r->exclude[i], soname) == 0)
            return 1;
    }
    return 0;
}

size_t
capsule_depset_find(const capsule_depset *set, const char *soname)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->deps[i].soname, soname) == 0 ||
            (set->deps[i].elf.soname && strcmp(set->deps[i].elf.soname, soname) == 0))
            return i;
    }
    return CAPSULE_NO_PARENT;
}

static size_t
find_path(const capsule_depset *set, const char *path)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->deps[i].path, path) == 0)
            return i;
    }
    return CAPSULE_NO_PARENT;
}

/* Takes ownership of c->elf, also on failure. */
static int
add_dep(capsule_depset *set, const char *soname, candidate *c, size_t parent)
{
    size_t cap = set->cap; /* deps and order grow together */
    if (capsule_grow((void **)&set->deps, &cap, set->n, sizeof *set->deps) != 0 ||
        capsule_grow((void **)&set->order, &set->cap, set->n, sizeof *set->order) != 0) {
        capsule_elffile_free(&c->elf);
        return -1;
    }
    capsule_dep *d = &set->deps[set->n];
    memset(d, 0, sizeof *d);
    d->soname = strdup(soname);
    d->path = strdup(c->path);
    d->in_prefix = strdup(c->in_prefix);
    d->found_as = strdup(c->found_as[0] ? c->found_as : c->in_prefix);
    d->elf = c->elf;
    d->parent = parent;
    d->state = VISITING;
    set->n++;
    if (!d->soname || !d->path || !d->in_prefix || !d->found_as)
        return capsule_error_set("out of memory");
    return 0;
}

/* `requester` (being visited) needs `dep`, itself still being visited: the
 * parent links from requester lead back to dep. ld.so would have to search
 * for one member of the cycle by name, outside the prefix: refuse. */
static int
cycle_error(const capsule_depset *set, size_t dep, size_t requester)
{
    char chain[768] = "";
    size_t len = 0;

    for (size_t i = requester; i != CAPSULE_NO_PARENT && len < sizeof chain;
         i = set->deps[i].parent) {
        int n = snprintf(chain + len, sizeof chain - len, " <- %s", set->deps[i].soname);
        len += n > 0 ? (size_t)n : 0;
        if (i == dep)
            break;
    }
    return capsule_error_set("dependency cycle: %s%s (a cycle cannot be loaded dependencies "
                             "first, so it is refused)",
                             set->deps[dep].soname, chain);
}

/* dep is already in the set: fine unless that closes a cycle. */
static int
seen(const capsule_depset *set, size_t dep, size_t requester)
{
    if (set->deps[dep].state != VISITING || dep == requester)
        return 0; /* done, or an object needing itself (ld.so matches its own soname) */
    return cycle_error(set, dep, requester);
}

/* 1 when soname is already loaded and now in the set, its dependencies
 * loaded with it (so not visited); 0 when it must be searched. */
static int
take_loaded(resolver *r, const char *soname, size_t parent, int *rc)
{
    size_t plen = prefix_len(r->prefix);
    candidate *c = calloc(1, sizeof *c);

    *rc = 0;
    if (!c) {
        *rc = capsule_error_set("out of memory");
        return 1;
    }
    if (r->loaded(r->loaded_ctx, soname, c->path, sizeof c->path) != 0) {
        free(c);
        return 0;
    }
    /* Only what came from the prefix: anything else is searched as usual. */
    if (strncmp(c->path, r->prefix, plen) != 0 || c->path[plen] != '/' ||
        snprintf(c->in_prefix, sizeof c->in_prefix, "%s", c->path + plen) >=
            (int)sizeof c->in_prefix) {
        free(c);
        return 0;
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "%s -> %s (loaded)", soname, c->path);
    size_t same = find_path(r->set, c->path);
    if (same != CAPSULE_NO_PARENT) {
        free(c);
        *rc = seen(r->set, same, parent);
        return 1;
    }
    *rc = add_dep(r->set, soname, c, parent);
    free(c);
    if (*rc == 0) {
        size_t self = r->set->n - 1;
        r->set->deps[self].state = DONE;
        r->set->deps[self].loaded = 1;
        r->set->order[r->set->n_order++] = self; /* pinned by the load like the rest */
    }
    return 1;
}

static int
visit(resolver *r, const char *soname, size_t parent, int depth)
{
    capsule_depset *set = r->set;
    candidate *c;

    if (excluded(r, soname))
        return 0;
    size_t have = capsule_depset_find(set, soname);
    if (have != CAPSULE_NO_PARENT)
        return seen(set, have, parent);
    if (depth > MAX_DEPTH)
        return capsule_error_set("dependency chain deeper than %d at %s", MAX_DEPTH, soname);
    int rc;
    if (depth > 0 && r->loaded && !strchr(soname, '/') &&
        take_loaded(r, soname, parent, &rc))
        return rc;
    /* On the heap: a chain MAX_DEPTH deep must not need MAX_DEPTH path buffers
     * of stack (a shim may be dlopen()ed from a thread with a small stack). */
    c = calloc(1, sizeof *c);
    if (!c)
        return capsule_error_set("out of memory");
    if (find_library(r, soname, parent, c) != 0) {
        free(c);
        char skipped[600] = "";
        if (r->skipped[0])
            snprintf(skipped, sizeof skipped, " (skipped %s)", r->skipped);
        if (parent == CAPSULE_NO_PARENT)
            return capsule_error_set("%s not found under the prefix%s", soname, skipped);
        return capsule_error_set("%s (needed by %s) not found under the prefix%s", soname,
                                 set->deps[parent].path, skipped);
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "%s -> %s", soname, c->path);
    size_t same = find_path(set, c->path);
    if (same != CAPSULE_NO_PARENT) {
        /* Another name for an object already there: keep one copy. */
        capsule_elffile_free(&c->elf);
        free(c);
        return seen(set, same, parent);
    }
    rc = add_dep(set, soname, c, parent);
    free(c);
    if (rc != 0)
        return -1;
    size_t self = set->n - 1;
    for (size_t i = 0; i < set->deps[self].elf.n_needed; i++) {
        if (visit(r, set->deps[self].elf.needed[i], self, depth + 1) != 0)
            return -1;
    }
    /* Post-order: dependencies first. */
    set->deps[self].state = DONE;
    set->order[set->n_order++] = self;
    return 0;
}

/* The object that asks (DT_RPATH/DT_RUNPATH, $ORIGIN) enters the set first,
 * outside the load order: read from its file, or as `loaded` describes it. */
static size_t
add_requester(resolver *r, const char *requester, const capsule_requester *loaded)
{
    candidate c;
    int ok = 1;

    memset(&c, 0, sizeof c);
    if (loaded) {
        ok = snprintf(c.path, sizeof c.path, "%s", loaded->path) < (int)sizeof c.path &&
             snprintf(c.in_prefix, sizeof c.in_prefix, "%s", loaded->in_prefix) <
                 (int)sizeof c.in_prefix;
        c.elf.soname = ok && loaded->soname ? strdup(loaded->soname) : NULL;
        c.elf.rpath = ok && loaded->rpath ? strdup(loaded->rpath) : NULL;
        c.elf.runpath = ok && loaded->runpath ? strdup(loaded->runpath) : NULL;
        ok = ok && (!loaded->soname || c.elf.soname) && (!loaded->rpath || c.elf.rpath) &&
             (!loaded->runpath || c.elf.runpath);
        /* Its DT_NEEDED too: the glibc libraries it needs are placed with
         * the set, as when its file was read. */
        if (ok && !(c.elf.needed = calloc(loaded->n_needed + 1, sizeof *c.elf.needed)))
            ok = 0;
        for (size_t i = 0; ok && i < loaded->n_needed; i++) {
            if ((c.elf.needed[i] = strdup(loaded->needed[i])))
                c.elf.n_needed++;
            else
                ok = 0;
        }
        if (!ok)
            capsule_elffile_free(&c.elf);
        requester = loaded->in_prefix;
    } else {
        ok = requester && try_candidate(r, requester, &c) == 0;
    }
    if (!ok || add_dep(r->set, c.elf.soname ? c.elf.soname : requester, &c,
                       CAPSULE_NO_PARENT) != 0)
        return CAPSULE_NO_PARENT;
    /* Already loaded: what it is needed by (a plugin needing its loader) is
     * no cycle, and it is never loaded again. */
    r->set->deps[r->set->n - 1].state = DONE;
    return r->set->n - 1;
}

static int
resolve(const char *prefix, const char *const *roots, size_t n_roots, const char *requester,
        const capsule_requester *loaded_requester, const char *const *exclude,
        capsule_loaded_fn loaded, void *ctx, capsule_depset *out)
{
    shared_ldcache *held;
    capsule_plankey key;
    int keyed = capsule_plankey_make(&key, prefix, roots, n_roots, requester, loaded_requester,
                                     exclude, loaded != NULL) == 0;
    if (keyed && capsule_plancache_take(&key, prefix, roots, n_roots, loaded, ctx, out) == 0) {
        capsule_plankey_free(&key);
        return 0;
    }
    resolver r = { .prefix = prefix, .exclude = exclude, .loaded = loaded, .loaded_ctx = ctx,
                   .set = out };
    r.root_fd = openat2_usable() ? open(prefix, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    size_t parent;
    int rc = 0;

    memset(out, 0, sizeof *out);
    r.cache = acquire_ldcache(prefix, &out->ldcache, &held);
    parent = requester || loaded_requester ? add_requester(&r, requester, loaded_requester)
                                           : CAPSULE_NO_PARENT;
    for (size_t i = 0; i < n_roots && rc == 0; i++) {
        if (excluded(&r, roots[i]))
            rc = capsule_error_set("%s is part of glibc or excluded: it cannot be capsuled",
                                   roots[i]);
        else
            rc = visit(&r, roots[i], parent, 0);
    }
    release_ldcache(held, r.cache);
    memo_free(&r.dirs);
    if (r.root_fd >= 0)
        close(r.root_fd);
    if (rc != 0) {
        char why[1024];
        snprintf(why, sizeof why, "%s", capsule_error());
        capsule_depset_free(out);
        if (keyed)
            capsule_plankey_free(&key);
        return capsule_error_set("%s", why);
    }
    if (keyed) {
        if (!r.unkeepable)
            capsule_plancache_keep(&key, prefix, out);
        capsule_plankey_free(&key);
    }
    return 0;
}

int
capsule_resolve(const char *prefix, const char *const *roots, size_t n_roots,
                const char *const *exclude, capsule_depset *out)
{
    return resolve(prefix, roots, n_roots, NULL, NULL, exclude, NULL, NULL, out);
}

int
capsule_resolve_from(const char *prefix, const char *root, const char *requester,
                     const char *const *exclude, capsule_loaded_fn loaded, void *ctx,
                     capsule_depset *out)
{
    return resolve(prefix, &root, 1, requester, NULL, exclude, loaded, ctx, out);
}

int
capsule_resolve_loaded_from(const char *prefix, const char *root,
                            const capsule_requester *requester, const char *const *exclude,
                            capsule_loaded_fn loaded, void *ctx, capsule_depset *out)
{
    return resolve(prefix, &root, 1, NULL, requester, exclude, loaded, ctx, out);
}

void
capsule_depset_free(capsule_depset *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->deps[i].soname);
        free(set->deps[i].path);
        free(set->deps[i].in_prefix);
        free(set->deps[i].found_as);
        capsule_elffile_free(&set->deps[i].elf);
    }
    for (size_t i = 0; i < set->n_probes; i++)
        free(set->probes[i].path);
    free(set->probes);
    free(set->deps);
    free(set->order);
    memset(set, 0, sizeof *set);
}
