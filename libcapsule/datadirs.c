/* The loaders' data files from the prefix (see datadirs.h).
 *
 * Which namespace calls: the bridge loads the namespace's context into the
 * context register (bridge.h), as for the dl* wrappers; the architecture's
 * entry (arch/<arch>/datadirs_entry.c) passes it as the argument after the
 * function's own, so the C wrapper takes it as one more parameter (no
 * lookup by caller address).
 *
 * Which libc answers: the program's, the one libc of the process, as the
 * program itself binds each name (an interposer's included), asked once.
 *
 * The hot path is a few strncmp calls against the directory list. A path
 * under a data directory costs no system call more when the prefix has the
 * name or lacks the whole directory, else one, or two for the first of a
 * run of misses (see attempt below). No allocation: the re-rooted path is built in a PATH_MAX
 * stack buffer (a longer one is left as it was); errno is as the call the
 * caller's answer came from left it. */
#define _GNU_SOURCE
#include "datadirs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadirs_list.h"
#include "debug.h"

#define MAX_DIRS 32

/* The process's list, set once before the first bridge with it is made. */
static struct {
    const char *path;
    size_t len;
} dirs[MAX_DIRS];
static size_t n_dirs;
static char dirs_text[4096];

typedef struct datadirs_ctx datadirs_ctx;

#define AS_ID(id, name, version, fn, nargs) id,
enum fn_id { DATADIRS_FUNCTIONS(AS_ID) N_FN };

/* Whether the prefix has a data directory, asked once per process (as
 * ld.so asks once whether a library directory exists). */
enum { ROOT_UNKNOWN, ROOT_PRESENT, ROOT_ABSENT };

struct datadirs_ctx {
    const char *prefix;
    size_t plen;
    unsigned char root[MAX_DIRS]; /* per data directory: ROOT_... */
    /* Per data directory: whether the prefix lacked the last name asked
     * for under it (attempt, below). Written without a lock: a stale flag
     * only picks the order of the calls, never their answer. */
    unsigned char missed[MAX_DIRS];
    datadirs_ctx *next;
};

/* Every context, so it stays reachable from libcapsule's own data (the
 * bridge's code is its only other holder). */
static datadirs_ctx *contexts;

/* ---- the directory list ---- */

static void
add_dir(char *path, size_t len)
{
    while (len > 1 && path[len - 1] == '/')
        len--;
    path[len] = '\0';
    /* "/" would re-root every file, /proc and /dev included. */
    if (path[0] != '/' || len < 2 || n_dirs == MAX_DIRS) {
        capsule_debug(CAPSULE_DEBUG_PATH, "data directory '%s' ignored", path);
        return;
    }
    dirs[n_dirs].path = path;
    dirs[n_dirs].len = len;
    n_dirs++;
}

static void
dirs_init_once(void)
{
    const char *env = secure_getenv("CAPSULE_DATA_DIRS");
    const char *spec = env ? env : CAPSULE_DATA_DIRS_DEFAULT;
    size_t size = strlen(spec);
    char *p = dirs_text;

    if (size >= sizeof dirs_text) {
        capsule_debug(CAPSULE_DEBUG_PATH, "CAPSULE_DATA_DIRS longer than %zu bytes: ignored",
                      sizeof dirs_text - 1);
        return;
    }
    memcpy(dirs_text, spec, size + 1);
    while (*p) {
        size_t len = strcspn(p, ":");
        char *next = p + len + (p[len] != '\0');
        if (len > 0)
            add_dir(p, len);
        p = next;
    }
    capsule_debug(CAPSULE_DEBUG_PATH, "%zu data directories from %s", n_dirs,
                  env ? "CAPSULE_DATA_DIRS" : "the built-in list");
}

/* The index of the data directory path is or lies under, or -1. */
static int
data_dir_of(const char *path)
{
    for (size_t i = 0; i < n_dirs; i++) {
        size_t len = dirs[i].len;
        if (strncmp(path, dirs[i].path, len) == 0 && (path[len] == '/' || path[len] == '\0'))
            return (int)i;
    }
    return -1;
}

/* A ".." component after the data directory could leave it. */
static int
climbs(const char *rest)
{
    for (const char *p = strstr(rest, "/.."); p; p = strstr(p + 1, "/.."))
        if (p[3] == '/' || p[3] == '\0')
            return 1;
    return 0;
}

/* <prefix><path> in buf (PATH_MAX bytes) when path is absolute, under a
 * data directory (its index in *dir), does not climb out of it and fits;
 * else NULL. */
static const char *
prefixed(const datadirs_ctx *c, const char *path, char *buf, int *dir)
{
    size_t len;

    if (!path || path[0] != '/' || (*dir = data_dir_of(path)) < 0)
        return NULL;
    len = strlen(path);
    if (c->plen + len >= PATH_MAX || climbs(path + dirs[*dir].len))
        return NULL;
    memcpy(buf, c->prefix, c->plen);
    memcpy(buf + c->plen, path, len + 1);
    return buf;
}

/* The rule: the prefix's entry wins when it has one (a symlink included,
 * so stat, lstat and open agree on which tree a name is in); else the
 * caller's path is used as it was. Every call decides afresh, but for
 * whether the prefix has the data directory at all: that is asked once per
 * process, as ld.so asks once whether a library directory exists.
 *
 * The cost: a call that cannot create anything is made on the prefix's
 * path first, and its success shows the entry is there (a hit costs the
 * call alone). A failure asks with one lstat (none when a no-follow call's
 * ENOENT or ENOTDIR already says the entry is missing), and a miss then
 * makes the call again on the caller's path: two calls more. Where the
 * prefix lacked the last name asked for under that data directory, the
 * lstat comes first, so a run of misses costs one call more each. A call that may create a
 * file (O_CREAT, fopen's "w" and "a") always decides first: a name the
 * prefix lacks is created where the caller named it. A data directory the
 * prefix lacks altogether (asked once: root_absent) costs nothing. */
typedef struct {
    char buf[PATH_MAX];
    const char *in_prefix; /* buf, or NULL: not a data file name */
    datadirs_ctx *c;
    int dir;               /* in_prefix's data directory */
    int tried;             /* the first call used in_prefix, undecided */
    int saved_errno;       /* the caller's */
} attempt;

static int
prefix_has(const char *in_prefix)
{
    struct stat st;
    return fstatat(AT_FDCWD, in_prefix, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Records and traces which tree answers for path. */
static void
decided(attempt *a, const char *path, int in_prefix)
{
    __atomic_store_n(&a->c->missed[a->dir], !in_prefix, __ATOMIC_RELAXED);
    capsule_debug(CAPSULE_DEBUG_PATH, "data file %s -> %s", path,
                  in_prefix ? a->in_prefix : "(not in the prefix: unchanged)");
}

/* Whether the prefix has data directory `dir` at all: asked with one lstat
 * the first time (two threads may both ask: same answer). A prefix without
 * it (a host without /etc/vulkan, say) then costs nothing per name. */
static int
root_absent(datadirs_ctx *c, int dir)
{
    unsigned char state = __atomic_load_n(&c->root[dir], __ATOMIC_RELAXED);
    char root[PATH_MAX];
    struct stat st;

    if (state == ROOT_UNKNOWN) {
        int saved = errno;
        memcpy(root, c->prefix, c->plen);
        memcpy(root + c->plen, dirs[dir].path, dirs[dir].len + 1);
        state = fstatat(AT_FDCWD, root, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT
                    ? ROOT_ABSENT
                    : ROOT_PRESENT;
        errno = saved;
        __atomic_store_n(&c->root[dir], state, __ATOMIC_RELAXED);
        capsule_debug(CAPSULE_DEBUG_PATH, "data directory %s: %s", root,
                      state == ROOT_ABSENT ? "not in the prefix" : "in the prefix");
    }
    return state == ROOT_ABSENT;
}

/* The path for the first call. */
static const char *
first_path(attempt *a, datadirs_ctx *c, const char *path, int may_create)
{
    a->saved_errno = errno;
    a->tried = 0;
    a->c = c;
    if (!(a->in_prefix = prefixed(c, path, a->buf, &a->dir)))
        return path;
    if (root_absent(c, a->dir)) {
        capsule_debug(CAPSULE_DEBUG_PATH, "data file %s -> (not in the prefix: unchanged)", path);
        return path;
    }
    if (!may_create && !__atomic_load_n(&c->missed[a->dir], __ATOMIC_RELAXED)) {
        a->tried = 1;
        return a->in_prefix;
    }
    int found = prefix_has(a->in_prefix);
    errno = a->saved_errno;
    decided(a, path, found);
    return found ? a->in_prefix : path;
}

/* After the first call: 1 when it is to be made again on the caller's path
 * (it was tried in the prefix, failed, and the prefix lacks the entry),
 * errno then as the caller left it. Else its result stands, errno as the
 * call set it. */
static int
again(attempt *a, const char *path, int failed, int nofollow)
{
    if (!a->tried)
        return 0;
    int err = errno;
    int found = !failed ||
                (!(nofollow && (err == ENOENT || err == ENOTDIR)) && prefix_has(a->in_prefix));
    decided(a, path, found);
    errno = found ? err : a->saved_errno;
    return !found;
}

/* ---- the program's libc ---- */

#define AS_NAME(id, name, version, fn, nargs) [id] = { name, version },
static const struct {
    const char *name;
    const char *version;
} names[N_FN] = { DATADIRS_FUNCTIONS(AS_NAME) };

/* What the program binds each name to, or NULL when this glibc lacks it
 * (the name is then left to fail inside as it would without capsules).
 * Filled once, before the first bridge with these entries exists. */
static void *real_fn[N_FN];

static void *
lookup(void *handle, enum fn_id id)
{
    return names[id].version ? dlvsym(handle, names[id].name, names[id].version)
                             : dlsym(handle, names[id].name);
}

/* ---- the wrappers: the context is the parameter after the real ones ---- */

typedef FILE *fopen_fn(const char *, const char *);
typedef int open_fn(const char *, int, ...);
typedef int open2_fn(const char *, int);
typedef int openat_fn(int, const char *, int, ...);
typedef int openat2_fn(int, const char *, int);
typedef DIR *opendir_fn(const char *);
typedef int scandir_fn(const char *, void *, void *, void *);
typedef int stat_fn(const char *, void *);
typedef int fstatat_fn(int, const char *, void *, int);
typedef int xstat_fn(int, const char *, void *);
typedef int access_fn(const char *, int);
typedef char *realpath_fn(const char *, char *);
typedef char *realpath_chk_fn(const char *, char *, size_t);
typedef ssize_t readlink_fn(const char *, char *, size_t);

#define CALL(type, id, ...) ((type *)real_fn[id])(__VA_ARGS__)

static int
fopen_may_create(const char *mode)
{
    return !mode || mode[0] != 'r';
}

/* open's mode is read only for O_CREAT/O_TMPFILE: passing the register on
 * whatever it holds is what the variadic callee expects. */
#define WRAP_FOPEN(fn, id)                                                                         \
    CAPSULE_HIDDEN FILE *fn(const char *path, const char *mode, datadirs_ctx *c)                   \
    {                                                                                              \
        attempt a;                                                                                 \
        const char *p = first_path(&a, c, path, fopen_may_create(mode));                           \
        FILE *f = CALL(fopen_fn, id, p, mode);                                                     \
        return again(&a, path, !f, 0) ? CALL(fopen_fn, id, path, mode) : f;                        \
    }
#define WRAP_OPEN(fn, id)                                                                          \
    CAPSULE_HIDDEN int fn(const char *path, int flags, mode_t mode, datadirs_ctx *c)               \
    {                                                                                              \
        attempt a;                                                                                 \
        const char *p = first_path(&a, c, path, flags & O_CREAT);                                  \
        int fd = CALL(open_fn, id, p, flags, mode);                                                \
        if (again(&a, path, fd < 0, flags & O_NOFOLLOW))                                           \
            fd = CALL(open_fn, id, path, flags, mode);                                             \
        return fd;                                                                                 \
    }
#define WRAP_OPEN2(fn, id)                                                                         \
    CAPSULE_HIDDEN int fn(const char *path, int flags, datadirs_ctx *c)                            \
    {                                                                                              \
        attempt a;                                                                                 \
        const char *p = first_path(&a, c, path, flags & O_CREAT);                                  \
        int fd = CALL(open2_fn, id, p, flags);                                                     \
        if (again(&a, path, fd < 0, flags & O_NOFOLLOW))                                           \
            fd = CALL(open2_fn, id, path, flags);                                                  \
        return fd;                                                                                 \
    }
#define WRAP_OPENAT(fn, id)                                                                        \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, int flags, mode_t mode, datadirs_ctx *c)    \
    {                                                                                              \
        attempt a;                                                                                 \
        const char *p = first_path(&a, c, path, flags & O_CREAT);                                  \
        int fd = CALL(openat_fn, id, dirfd, p, flags, mode);                                       \
        if (again(&a, path, fd < 0, flags & O_NOFOLLOW))                                           \
            fd = CALL(openat_fn, id, dirfd, path, flags, mode);                                    \
        return fd;                                                                                 \
    }
#define WRAP_OPENAT2(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, int flags, datadirs_ctx *c)                 \
    {                                                                                              \
        attempt a;                                                                                 \
        const char *p = first_path(&a, c, path, flags & O_CREAT);                                  \
        int fd = CALL(openat2_fn, id, dirfd, p, flags);                                            \
        if (again(&a, path, fd < 0, flags & O_NOFOLLOW))                                           \
            fd = CALL(openat2_fn, id, dirfd, path, flags);                                         \
        return fd;                                                                                 \
    }
#define WRAP_SCANDIR(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(const char *path, void *list, void *filter, void *compar,                \
                          datadirs_ctx *c)                                                         \
    {                                                                                              \
        attempt a;                                                                                 \
        int n = CALL(scandir_fn, id, first_path(&a, c, path, 0), list, filter, compar);            \
        return again(&a, path, n < 0, 0) ? CALL(scandir_fn, id, path, list, filter, compar) : n;   \
    }
#define WRAP_STAT(fn, id, nofollow)                                                                \
    CAPSULE_HIDDEN int fn(const char *path, void *st, datadirs_ctx *c)                             \
    {                                                                                              \
        attempt a;                                                                                 \
        int rc = CALL(stat_fn, id, first_path(&a, c, path, 0), st);                                \
        return again(&a, path, rc != 0, nofollow) ? CALL(stat_fn, id, path, st) : rc;              \
    }
#define WRAP_FSTATAT(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, void *st, int flags, datadirs_ctx *c)       \
    {                                                                                              \
        attempt a;                                                                                 \
        int rc = CALL(fstatat_fn, id, dirfd, first_path(&a, c, path, 0), st, flags);               \
        if (again(&a, path, rc != 0, flags & AT_SYMLINK_NOFOLLOW))                                 \
            rc = CALL(fstatat_fn, id, dirfd, path, st, flags);                                     \
        return rc;                                                                                 \
    }

WRAP_FOPEN(capsule_dd_fopen, F_FOPEN)
WRAP_FOPEN(capsule_dd_fopen64, F_FOPEN64)
WRAP_OPEN(capsule_dd_open, F_OPEN)
WRAP_OPEN(capsule_dd_open64, F_OPEN64)
WRAP_OPEN2(capsule_dd_open_2, F_OPEN_2)
WRAP_OPEN2(capsule_dd_open64_2, F_OPEN64_2)
WRAP_OPENAT(capsule_dd_openat, F_OPENAT)
WRAP_OPENAT(capsule_dd_openat64, F_OPENAT64)
WRAP_OPENAT2(capsule_dd_openat_2, F_OPENAT_2)
WRAP_OPENAT2(capsule_dd_openat64_2, F_OPENAT64_2)
WRAP_SCANDIR(capsule_dd_scandir, F_SCANDIR)
WRAP_SCANDIR(capsule_dd_scandir64, F_SCANDIR64)
WRAP_STAT(capsule_dd_stat, F_STAT, 0)
WRAP_STAT(capsule_dd_stat64, F_STAT64, 0)
WRAP_STAT(capsule_dd_lstat, F_LSTAT, 1)
WRAP_STAT(capsule_dd_lstat64, F_LSTAT64, 1)
WRAP_FSTATAT(capsule_dd_fstatat, F_FSTATAT)
WRAP_FSTATAT(capsule_dd_fstatat64, F_FSTATAT64)

CAPSULE_HIDDEN DIR *
capsule_dd_opendir(const char *path, datadirs_ctx *c)
{
    attempt a;
    DIR *d = CALL(opendir_fn, F_OPENDIR, first_path(&a, c, path, 0));
    return again(&a, path, !d, 0) ? CALL(opendir_fn, F_OPENDIR, path) : d;
}

CAPSULE_HIDDEN int
capsule_dd_xstat(int ver, const char *path, void *st, datadirs_ctx *c)
{
    attempt a;
    int rc = CALL(xstat_fn, F_XSTAT, ver, first_path(&a, c, path, 0), st);
    return again(&a, path, rc != 0, 0) ? CALL(xstat_fn, F_XSTAT, ver, path, st) : rc;
}

CAPSULE_HIDDEN int
capsule_dd_access(const char *path, int mode, datadirs_ctx *c)
{
    attempt a;
    int rc = CALL(access_fn, F_ACCESS, first_path(&a, c, path, 0), mode);
    return again(&a, path, rc != 0, 0) ? CALL(access_fn, F_ACCESS, path, mode) : rc;
}

CAPSULE_HIDDEN char *
capsule_dd_realpath(const char *path, char *resolved, datadirs_ctx *c)
{
    attempt a;
    char *r = CALL(realpath_fn, F_REALPATH, first_path(&a, c, path, 0), resolved);
    return again(&a, path, !r, 0) ? CALL(realpath_fn, F_REALPATH, path, resolved) : r;
}

CAPSULE_HIDDEN char *
capsule_dd_realpath_chk(const char *path, char *resolved, size_t size, datadirs_ctx *c)
{
    attempt a;
    char *r = CALL(realpath_chk_fn, F_REALPATH_CHK, first_path(&a, c, path, 0), resolved, size);
    return again(&a, path, !r, 0) ? CALL(realpath_chk_fn, F_REALPATH_CHK, path, resolved, size)
                                  : r;
}

/* readlink never follows the last component. */
CAPSULE_HIDDEN ssize_t
capsule_dd_readlink(const char *path, char *out, size_t size, datadirs_ctx *c)
{
    attempt a;
    ssize_t n = CALL(readlink_fn, F_READLINK, first_path(&a, c, path, 0), out, size);
    return again(&a, path, n < 0, 1) ? CALL(readlink_fn, F_READLINK, path, out, size) : n;
}

/* ---- the bridge entries ---- */

#define AS_DECL(id, name, version, fn, nargs) CAPSULE_HIDDEN void capsule_dd_entry_##fn(void);
DATADIRS_FUNCTIONS(AS_DECL)
#define AS_ENTRY(id, name, version, fn, nargs) [id] = (const void *)capsule_dd_entry_##fn,
static const void *const entries[N_FN] = { DATADIRS_FUNCTIONS(AS_ENTRY) };

static void
init_once(void)
{
    dirs_init_once();
    for (int i = 0; i < N_FN; i++)
        real_fn[i] = lookup(RTLD_DEFAULT, (enum fn_id)i);
}

size_t
capsule_datadirs_bridge_entries(capsule_ns *ns, capsule_bridge_entry *out, size_t max)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const char *prefix = capsule_ns_prefix(ns);
    size_t plen = strlen(prefix), n = 0;
    datadirs_ctx *c;

    pthread_once(&once, init_once);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen == 0 || n_dirs == 0)
        return 0; /* nothing to re-root: the capsule calls its libc directly */
    if (!(c = calloc(1, sizeof *c)))
        return 0;
    c->prefix = prefix, c->plen = plen;
    c->next = contexts, contexts = c; /* namespaces are made under one lock */
    for (size_t i = 0; i < N_FN && n < max; i++) {
        if (real_fn[i])
            out[n++] = (capsule_bridge_entry){ names[i].name, entries[i], c };
    }
    if (n < N_FN)
        capsule_debug(CAPSULE_DEBUG_PATH, "data file wrappers: %zu of %d", n, (int)N_FN);
    return n;
}
