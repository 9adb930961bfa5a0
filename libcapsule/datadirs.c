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
 * The hot path is a few strncmp calls against the directory list; only a
 * path under a data directory costs one fstatat in the prefix. No
 * allocation: the re-rooted path is built in a PATH_MAX stack buffer (a
 * longer one is left as it was), and errno is preserved; libc's function
 * sets it, as the caller expects. */
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

struct datadirs_ctx {
    const char *prefix;
    size_t plen;
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

/* 1 when path is a data directory or lies under one (its length in *dir_len). */
static int
under_data_dir(const char *path, size_t *dir_len)
{
    for (size_t i = 0; i < n_dirs; i++) {
        size_t len = dirs[i].len;
        if (strncmp(path, dirs[i].path, len) == 0 && (path[len] == '/' || path[len] == '\0')) {
            *dir_len = len;
            return 1;
        }
    }
    return 0;
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

/* The path to use: buf (PATH_MAX bytes) holding <prefix><path> when path is
 * absolute, under a data directory, and the prefix has that entry; else
 * path itself. */
static const char *
reroot(const datadirs_ctx *c, const char *path, char *buf)
{
    size_t dir_len, len;
    struct stat st;

    if (!path || path[0] != '/' || !under_data_dir(path, &dir_len))
        return path;
    len = strlen(path);
    if (c->plen + len >= PATH_MAX || climbs(path + dir_len))
        return path;
    memcpy(buf, c->prefix, c->plen);
    memcpy(buf + c->plen, path, len + 1);
    int saved = errno;
    /* The prefix's entry wins when it has one (a symlink included), so
     * stat, lstat and open agree on which tree a name is in. */
    int found = fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    errno = saved;
    capsule_debug(CAPSULE_DEBUG_PATH, "data file %s -> %s", path,
                  found ? buf : "(not in the prefix: unchanged)");
    return found ? buf : path;
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

/* open's mode is read only for O_CREAT/O_TMPFILE: passing the register on
 * whatever it holds is what the variadic callee expects. */
#define WRAP_FOPEN(fn, id)                                                                         \
    CAPSULE_HIDDEN FILE *fn(const char *path, const char *mode, datadirs_ctx *c)                   \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(fopen_fn, id, reroot(c, path, buf), mode);                                     \
    }
#define WRAP_OPEN(fn, id)                                                                          \
    CAPSULE_HIDDEN int fn(const char *path, int flags, mode_t mode, datadirs_ctx *c)               \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(open_fn, id, reroot(c, path, buf), flags, mode);                               \
    }
#define WRAP_OPEN2(fn, id)                                                                         \
    CAPSULE_HIDDEN int fn(const char *path, int flags, datadirs_ctx *c)                            \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(open2_fn, id, reroot(c, path, buf), flags);                                    \
    }
#define WRAP_OPENAT(fn, id)                                                                        \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, int flags, mode_t mode, datadirs_ctx *c)    \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(openat_fn, id, dirfd, reroot(c, path, buf), flags, mode);                      \
    }
#define WRAP_OPENAT2(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, int flags, datadirs_ctx *c)                 \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(openat2_fn, id, dirfd, reroot(c, path, buf), flags);                           \
    }
#define WRAP_SCANDIR(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(const char *path, void *list, void *filter, void *compar,              \
                          datadirs_ctx *c)                                                         \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(scandir_fn, id, reroot(c, path, buf), list, filter, compar);                   \
    }
#define WRAP_STAT(fn, id)                                                                          \
    CAPSULE_HIDDEN int fn(const char *path, void *st, datadirs_ctx *c)                             \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(stat_fn, id, reroot(c, path, buf), st);                                        \
    }
#define WRAP_FSTATAT(fn, id)                                                                       \
    CAPSULE_HIDDEN int fn(int dirfd, const char *path, void *st, int flags, datadirs_ctx *c)       \
    {                                                                                              \
        char buf[PATH_MAX];                                                                        \
        return CALL(fstatat_fn, id, dirfd, reroot(c, path, buf), st, flags);                       \
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
WRAP_STAT(capsule_dd_stat, F_STAT)
WRAP_STAT(capsule_dd_stat64, F_STAT64)
WRAP_STAT(capsule_dd_lstat, F_LSTAT)
WRAP_STAT(capsule_dd_lstat64, F_LSTAT64)
WRAP_FSTATAT(capsule_dd_fstatat, F_FSTATAT)
WRAP_FSTATAT(capsule_dd_fstatat64, F_FSTATAT64)

CAPSULE_HIDDEN DIR *
capsule_dd_opendir(const char *path, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(opendir_fn, F_OPENDIR, reroot(c, path, buf));
}

CAPSULE_HIDDEN int
capsule_dd_xstat(int ver, const char *path, void *st, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(xstat_fn, F_XSTAT, ver, reroot(c, path, buf), st);
}

CAPSULE_HIDDEN int
capsule_dd_access(const char *path, int mode, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(access_fn, F_ACCESS, reroot(c, path, buf), mode);
}

CAPSULE_HIDDEN char *
capsule_dd_realpath(const char *path, char *resolved, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(realpath_fn, F_REALPATH, reroot(c, path, buf), resolved);
}

CAPSULE_HIDDEN char *
capsule_dd_realpath_chk(const char *path, char *resolved, size_t size, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(realpath_chk_fn, F_REALPATH_CHK, reroot(c, path, buf), resolved, size);
}

CAPSULE_HIDDEN ssize_t
capsule_dd_readlink(const char *path, char *out, size_t size, datadirs_ctx *c)
{
    char buf[PATH_MAX];
    return CALL(readlink_fn, F_READLINK, reroot(c, path, buf), out, size);
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
