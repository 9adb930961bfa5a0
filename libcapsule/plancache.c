/* Resolutions kept across processes (plancache.h).
 *
 * Where: $CAPSULE_CACHE_DIR, else $XDG_CACHE_HOME/capsule, else
 * $HOME/.cache/capsule; a CAPSULE_CACHE_DIR that is not an absolute path
 * ("off") turns keeping off, as does a set-user-ID program (the variables
 * are read with secure_getenv) and a directory that is not the user's own
 * and private. One file per key: the key is every input of the resolution
 * (architecture, prefix, roots, the requester as read, the exclusions,
 * whether loaded objects are matched), its FNV-1a hash names the file and
 * the file starts with the key itself (a collision is a miss). Written to
 * a new file and renamed: readers see a whole file or none.
 *
 * A kept resolution holds while stat() gives the same device, inode, size
 * and modification time for: the prefix's ld.so.cache; every object's
 * file; the directory each was found in (a symlink re-pointed or a file
 * renamed there); and every candidate the search passed over (still
 * missing, or the same file). Objects it took as already loaded must still
 * be loaded at the same path, and no other object it names may be loaded
 * now (ld.so would match that one instead). Anything else, or a file that
 * does not parse, is a miss: the resolver runs and keeps its result.
 *
 * Staleness accepted: a directory reached through an absolute symlink is
 * stat()ed as the host sees it, not as the prefix does; a file rewritten
 * in place within the timestamp's granularity keeping its size. Package
 * managers rename files into place and run ldconfig, which the checks
 * see. The file names only paths inside the prefix: one that names
 * anything else does not parse. */
#define _GNU_SOURCE
#include "plancache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debug.h"
#include "elfarch.h"

#define FORMAT "capsule-plan 1"
#define MAX_FILE ((size_t)4 << 20)
#define MAX_ITEMS 65536u
#define FIRST_READ 65536u

/* ---- where ---- */

static char cache_dir[PATH_MAX];
static int cache_on;

static int
absolute_dir(const char *value, const char *tail)
{
    return value && value[0] == '/' &&
           snprintf(cache_dir, sizeof cache_dir - 64, "%s%s", value, tail) <
               (int)sizeof cache_dir - 64;
}

static void
cache_dir_once(void)
{
    const char *env = secure_getenv("CAPSULE_CACHE_DIR");

    if (env)
        cache_on = absolute_dir(env, "");
    else if (secure_getenv("XDG_CACHE_HOME") && secure_getenv("XDG_CACHE_HOME")[0] == '/')
        cache_on = absolute_dir(secure_getenv("XDG_CACHE_HOME"), "/capsule");
    else
        cache_on = absolute_dir(secure_getenv("HOME"), "/.cache/capsule");
    capsule_debug(CAPSULE_DEBUG_CACHE, "directory: %s", cache_on ? cache_dir : "none (off)");
}

static int
cache_in_use(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, cache_dir_once);
    return cache_on;
}

/* The directory, made if missing, when it is the user's own and private. */
static int
usable_dir(int create)
{
    struct stat st;

    if (stat(cache_dir, &st) != 0 && create) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", cache_dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            (void)mkdir(parent, 0700); /* ~/.cache on a new account */
        }
        (void)mkdir(cache_dir, 0700);
    }
    if (stat(cache_dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        capsule_debug(CAPSULE_DEBUG_CACHE, "%s: missing, not a directory, or not private",
                      cache_dir);
        return 0;
    }
    return 1;
}

/* Whether the directory is the user's own and private: 0 not known yet, 1
 * yes, -1 no (looked at once per process, until a keep makes it). */
static int dir_state;

static int
dir_private(void)
{
    int state = __atomic_load_n(&dir_state, __ATOMIC_RELAXED);

    if (state == 0) {
        state = usable_dir(0) ? 1 : -1;
        __atomic_store_n(&dir_state, state, __ATOMIC_RELAXED);
    }
    return state > 0;
}

/* ---- writing fields: NUL-terminated strings ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} writer;

static void
put_n(writer *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *p = cap <= MAX_FILE ? realloc(w->p, cap) : NULL;
        if (!p) {
            w->failed = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, s, n);
    w->p[w->len + n] = '\0';
    w->len += n + 1;
}

static void
put(writer *w, const char *s)
{
    put_n(w, s, strlen(s));
}

static __attribute__((format(printf, 2, 3))) void
putf(writer *w, const char *fmt, ...)
{
    char buf[160];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        w->failed = 1;
    else
        put_n(w, buf, (size_t)n);
}

/* An optional string: "!" for none, "=" and the string otherwise. */
static void
put_opt(writer *w, const char *s)
{
    if (!s) {
        put(w, "!");
        return;
    }
    put(w, "=");
    if (!w->failed) {
        w->len--; /* the string continues the "=" field */
        put(w, s);
    }
}

static void
put_stamp(writer *w, const capsule_stamp *s)
{
    putf(w, "%d %llu %llu %lld %lld %lld", s->present, s->dev, s->ino, s->size, s->mtime_sec,
         s->mtime_nsec);
}

/* ---- reading them back: anything out of place makes the file unusable ---- */

typedef struct {
    const char *p, *end;
    int bad;
} reader;

static const char *
next(reader *r)
{
    const char *nul = r->bad ? NULL : memchr(r->p, '\0', (size_t)(r->end - r->p));

    if (!nul) {
        r->bad = 1;
        return "";
    }
    const char *s = r->p;
    r->p = nul + 1;
    return s;
}

static size_t
get_count(reader *r, size_t max)
{
    const char *s = next(r);
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno || v > max) {
        r->bad = 1;
        return 0;
    }
    return (size_t)v;
}

static char *
get_str(reader *r)
{
    const char *s = next(r);
    char *copy = r->bad ? NULL : strdup(s);

    if (!copy)
        r->bad = 1;
    return copy;
}

static char *
get_opt(reader *r)
{
    const char *s = next(r);

    if (r->bad || strcmp(s, "!") == 0)
        return NULL;
    char *copy = s[0] == '=' ? strdup(s + 1) : NULL;
    if (!copy)
        r->bad = 1;
    return copy;
}

/* One decimal of a stamp, ending at `end` (' ' between fields, '\0' after
 * the last): digits, after a '-' when `is_signed`. Not sscanf: a start reads
 * a hundred stamps, and strtoull does not set up a stream for each. */
static const char *
stamp_field(const char *s, int is_signed, char end, unsigned long long *u, long long *i)
{
    char *stop;
    int neg = is_signed && s[0] == '-';

    if (s[neg] < '0' || s[neg] > '9')
        return NULL;
    errno = 0;
    if (is_signed)
        *i = strtoll(s, &stop, 10);
    else
        *u = strtoull(s, &stop, 10);
    return errno || *stop != end ? NULL : stop + 1;
}

static void
get_stamp(reader *r, capsule_stamp *st)
{
    const char *s = next(r);
    unsigned long long present = 2;

    memset(st, 0, sizeof *st);
    if (!(s = stamp_field(s, 0, ' ', &present, NULL)) ||
        !(s = stamp_field(s, 0, ' ', &st->dev, NULL)) ||
        !(s = stamp_field(s, 0, ' ', &st->ino, NULL)) ||
        !(s = stamp_field(s, 1, ' ', NULL, &st->size)) ||
        !(s = stamp_field(s, 1, ' ', NULL, &st->mtime_sec)) ||
        !stamp_field(s, 1, '\0', NULL, &st->mtime_nsec) || present > 1)
        r->bad = 1;
    st->present = (int)present;
}

/* ---- the key ---- */

static uint64_t
fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int
capsule_plankey_make(capsule_plankey *key, const char *prefix, const char *const *roots,
                     size_t n_roots, const char *requester,
                     const capsule_requester *loaded_requester, const char *const *exclude,
                     int sees_loaded)
{
    writer w = { 0 };

    memset(key, 0, sizeof *key);
    if (!cache_in_use())
        return -1;
    put(&w, FORMAT);
    put(&w, CAPSULE_MACHINE_NAME);
    put(&w, prefix);
    putf(&w, "%zu", n_roots);
    for (size_t i = 0; i < n_roots; i++)
        put(&w, roots[i]);
    if (loaded_requester) {
        const capsule_requester *q = loaded_requester;
        put(&w, "loaded requester");
        put(&w, q->path);
        put(&w, q->in_prefix);
        put_opt(&w, q->soname);
        put_opt(&w, q->rpath);
        put_opt(&w, q->runpath);
        putf(&w, "%zu", q->n_needed);
        for (size_t i = 0; i < q->n_needed; i++)
            put(&w, q->needed[i]);
    } else {
        put(&w, "requester");
        put_opt(&w, requester);
    }
    put(&w, sees_loaded ? "matches loaded objects" : "loads all");
    for (size_t i = 0; exclude && exclude[i]; i++)
        put(&w, exclude[i]);
    put(&w, "end of key");
    if (w.failed ||
        snprintf(key->file, sizeof key->file, "%s/%016llx-%s.plan", cache_dir,
                 (unsigned long long)fnv1a(w.p, w.len), CAPSULE_MACHINE_NAME) >=
            (int)sizeof key->file) {
        free(w.p);
        return -1;
    }
    key->text = w.p;
    key->len = w.len;
    return 0;
}

void
capsule_plankey_free(capsule_plankey *key)
{
    free(key->text);
    memset(key, 0, sizeof *key);
}

/* ---- the depset, written and read ---- */

/* The host directory `found_as` (a path inside the prefix) lies in. */
static int
dir_of(const char *prefix, const char *found_as, char *out, size_t size)
{
    size_t plen = strlen(prefix);
    const char *slash = strrchr(found_as, '/');

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (found_as[0] != '/' || !slash)
        return -1;
    int dlen = slash == found_as ? 1 : (int)(slash - found_as);
    return snprintf(out, size, "%.*s%.*s", (int)plen, prefix, dlen, found_as) < (int)size ? 0
                                                                                          : -1;
}

static void
write_dep(writer *w, const char *prefix, const capsule_dep *d)
{
    char dir[PATH_MAX * 2];
    capsule_stamp dir_stamp = { 0 };

    put(w, d->soname);
    put(w, d->path);
    put(w, d->in_prefix);
    put(w, d->found_as);
    if (d->parent == CAPSULE_NO_PARENT)
        put(w, "-");
    else
        putf(w, "%zu", d->parent);
    putf(w, "%d", d->loaded ? 1 : 0);
    put_opt(w, d->elf.soname);
    put_opt(w, d->elf.rpath);
    put_opt(w, d->elf.runpath);
    putf(w, "%zu", d->elf.n_needed);
    for (size_t i = 0; i < d->elf.n_needed; i++)
        put(w, d->elf.needed[i]);
    putf(w, "%zu", d->elf.n_verneed);
    for (size_t i = 0; i < d->elf.n_verneed; i++) {
        put(w, d->elf.verneed[i].file);
        put(w, d->elf.verneed[i].version);
    }
    put_stamp(w, &d->elf.stamp);
    if (!d->loaded && d->elf.stamp.present) {
        if (dir_of(prefix, d->found_as, dir, sizeof dir) != 0)
            w->failed = 1;
        else
            capsule_stamp_path(dir, &dir_stamp);
    }
    put_stamp(w, &dir_stamp);
}

static int
in_prefix_path(const char *prefix, const char *path, const char *in_prefix)
{
    size_t plen = strlen(prefix);

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    return in_prefix[0] == '/' && strncmp(path, prefix, plen) == 0 &&
           strcmp(path + plen, in_prefix) == 0;
}

/* A number below n, or "-" for none (CAPSULE_NO_PARENT). */
static size_t
get_index(reader *r, size_t n)
{
    const char *s = next(r);
    char *end;

    if (strcmp(s, "-") == 0)
        return CAPSULE_NO_PARENT;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno || v >= n) {
        r->bad = 1;
        return CAPSULE_NO_PARENT;
    }
    return (size_t)v;
}

static char **
get_list(reader *r, size_t *n)
{
    *n = get_count(r, MAX_ITEMS);
    char **list = r->bad ? NULL : calloc(*n + 1, sizeof *list);

    if (!list) {
        r->bad = 1;
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        list[i] = get_str(r);
    return list;
}

static void
read_dep(reader *r, const char *prefix, size_t n, capsule_dep *d, capsule_stamp *dir_stamp)
{
    d->soname = get_str(r);
    d->path = get_str(r);
    d->in_prefix = get_str(r);
    d->found_as = get_str(r);
    d->parent = get_index(r, n);
    d->loaded = (int)get_count(r, 1);
    d->state = 2; /* done */
    d->elf.soname = get_opt(r);
    d->elf.rpath = get_opt(r);
    d->elf.runpath = get_opt(r);
    d->elf.needed = get_list(r, &d->elf.n_needed);
    d->elf.n_verneed = get_count(r, MAX_ITEMS);
    d->elf.verneed = r->bad ? NULL : calloc(d->elf.n_verneed + 1, sizeof *d->elf.verneed);
    if (!d->elf.verneed)
        r->bad = 1, d->elf.n_verneed = 0;
    for (size_t i = 0; i < d->elf.n_verneed; i++) {
        d->elf.verneed[i].file = get_str(r);
        d->elf.verneed[i].version = get_str(r);
    }
    get_stamp(r, &d->elf.stamp);
    get_stamp(r, dir_stamp);
    /* Only files inside the prefix, named as the resolver names them. */
    if (!r->bad && (!in_prefix_path(prefix, d->path, d->in_prefix) || d->found_as[0] != '/'))
        r->bad = 1;
}

static void
keep_set(writer *w, const char *prefix, const capsule_depset *set)
{
    put_stamp(w, &set->ldcache);
    putf(w, "%zu", set->n_probes);
    for (size_t i = 0; i < set->n_probes; i++) {
        put(w, set->probes[i].path);
        put_stamp(w, &set->probes[i].stamp);
    }
    putf(w, "%zu", set->n);
    for (size_t i = 0; i < set->n; i++)
        write_dep(w, prefix, &set->deps[i]);
    putf(w, "%zu", set->n_order);
    for (size_t i = 0; i < set->n_order; i++)
        putf(w, "%zu", set->order[i]);
    put(w, "end");
}

/* Reads the set after the key; its dir_stamps[i] for deps[i]. */
static void
read_set(reader *r, const char *prefix, capsule_depset *set, capsule_stamp **dir_stamps)
{
    get_stamp(r, &set->ldcache);
    set->n_probes = get_count(r, MAX_ITEMS);
    set->probes = r->bad ? NULL : calloc(set->n_probes + 1, sizeof *set->probes);
    if (!set->probes)
        r->bad = 1, set->n_probes = 0;
    set->probe_cap = set->n_probes + 1;
    for (size_t i = 0; i < set->n_probes; i++) {
        set->probes[i].path = get_str(r);
        get_stamp(r, &set->probes[i].stamp);
    }
    size_t n = get_count(r, MAX_ITEMS);
    set->deps = r->bad ? NULL : calloc(n + 1, sizeof *set->deps);
    set->order = r->bad ? NULL : calloc(n + 1, sizeof *set->order);
    *dir_stamps = r->bad ? NULL : calloc(n + 1, sizeof **dir_stamps);
    if (!set->deps || !set->order || !*dir_stamps) {
        r->bad = 1;
        return;
    }
    set->cap = n + 1;
    for (size_t i = 0; i < n && !r->bad; i++, set->n++)
        read_dep(r, prefix, n, &set->deps[i], &(*dir_stamps)[i]);
    set->n_order = get_count(r, n);
    for (size_t i = 0; i < set->n_order && !r->bad; i++)
        set->order[i] = get_index(r, n);
    if (strcmp(next(r), "end") != 0 || r->p != r->end)
        r->bad = 1;
}

/* ---- still valid? ---- */

static int
is_root(const char *soname, const char *const *roots, size_t n_roots)
{
    for (size_t i = 0; i < n_roots; i++) {
        if (strcmp(roots[i], soname) == 0)
            return 1;
    }
    return 0;
}

/* The object deps[i] was loaded from (for a loaded one) or found in (for
 * one read): the same now? `why` says what differs. */
static int
dep_holds(const char *prefix, const capsule_depset *set, size_t i, const capsule_stamp *dir_stamps,
          capsule_loaded_fn loaded, void *ctx, const char *const *roots, size_t n_roots,
          const char **why)
{
    const capsule_dep *d = &set->deps[i];
    char path[PATH_MAX * 2], dir[PATH_MAX * 2], other[PATH_MAX * 2];
    size_t plen = strlen(prefix);

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (d->loaded) {
        *why = "an object taken as loaded is not loaded there now";
        return loaded && loaded(ctx, d->soname, path, sizeof path) == 0 &&
               strcmp(path, d->path) == 0;
    }
    if (!d->elf.stamp.present)
        return 1; /* the requester as loaded: the key holds all that was read of it */
    *why = "a file or its directory changed";
    if (!capsule_stamp_unchanged(d->path, &d->elf.stamp))
        return 0;
    if (dir_of(prefix, d->found_as, dir, sizeof dir) != 0)
        return 0;
    size_t j = 0; /* each directory checked once */
    while (j < i && (set->deps[j].loaded || !set->deps[j].elf.stamp.present ||
                     dir_of(prefix, set->deps[j].found_as, other, sizeof other) != 0 ||
                     strcmp(other, dir) != 0))
        j++;
    if (j == i && !capsule_stamp_unchanged(dir, &dir_stamps[i]))
        return 0;
    /* Loaded meanwhile from the prefix: ld.so would match it by soname
     * instead, and the resolver would take it as loaded. */
    *why = "an object it names is loaded now";
    return !loaded || d->parent == CAPSULE_NO_PARENT || is_root(d->soname, roots, n_roots) ||
           strchr(d->soname, '/') || loaded(ctx, d->soname, path, sizeof path) != 0 ||
           strncmp(path, prefix, plen) != 0 || path[plen] != '/';
}

static int
set_holds(const char *prefix, const capsule_depset *set, const capsule_stamp *dir_stamps,
          capsule_loaded_fn loaded, void *ctx, const char *const *roots, size_t n_roots,
          const char **why)
{
    char path[PATH_MAX * 2];
    size_t plen = strlen(prefix);

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    *why = "the prefix's ld.so.cache changed";
    if (snprintf(path, sizeof path, "%.*s/etc/ld.so.cache", (int)plen, prefix) >=
            (int)sizeof path ||
        !capsule_stamp_unchanged(path, &set->ldcache))
        return 0;
    *why = "a candidate passed over changed";
    for (size_t i = 0; i < set->n_probes; i++) {
        if (strncmp(set->probes[i].path, prefix, plen) != 0 ||
            !capsule_stamp_unchanged(set->probes[i].path, &set->probes[i].stamp))
            return 0;
    }
    for (size_t i = 0; i < set->n; i++) {
        if (!dep_holds(prefix, set, i, dir_stamps, loaded, ctx, roots, n_roots, why))
            return 0;
    }
    return 1;
}

/* ---- the file ---- */

/* The whole file in a buffer (*len bytes), or NULL. */
static char *
read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    size_t cap = FIRST_READ, done = 0;
    char *buf = fd >= 0 ? malloc(cap) : NULL;

    while (buf) {
        ssize_t n = read(fd, buf + done, cap - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                break;
            close(fd);
            *len = done;
            return buf;
        }
        done += (size_t)n;
        if (done < cap) /* a regular file read short: its end */
            continue;
        char *more = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;
        if (!more)
            break;
        buf = more;
        cap *= 2;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int
capsule_plancache_take(const capsule_plankey *key, const char *prefix, const char *const *roots,
                       size_t n_roots, capsule_loaded_fn loaded, void *ctx, capsule_depset *out)
{
    capsule_stamp *dir_stamps = NULL;
    const char *why = "it does not parse";
    size_t len;

    memset(out, 0, sizeof *out);
    char *buf = dir_private() ? read_whole(key->file, &len) : NULL;
    if (!buf)
        return 1;
    reader r = { buf, buf + len, 0 };
    if (len < key->len || memcmp(buf, key->text, key->len) != 0) {
        why = "another key";
        r.bad = 1;
    }
    r.p += key->len;
    if (!r.bad)
        read_set(&r, prefix, out, &dir_stamps);
    int ok = !r.bad && set_holds(prefix, out, dir_stamps, loaded, ctx, roots, n_roots, &why);
    free(buf);
    free(dir_stamps);
    if (!ok) {
        capsule_debug(CAPSULE_DEBUG_CACHE, "%s: not taken: %s", key->file, why);
        capsule_depset_free(out);
        return 1;
    }
    capsule_debug(CAPSULE_DEBUG_CACHE, "%s: taken (%zu objects)", key->file, out->n);
    for (size_t i = 0; i < out->n_order; i++)
        capsule_debug(CAPSULE_DEBUG_PATH, "%s -> %s (kept)", out->deps[out->order[i]].soname,
                      out->deps[out->order[i]].path);
    return 0;
}

void
capsule_plancache_keep(const capsule_plankey *key, const char *prefix, const capsule_depset *set)
{
    char tmp[PATH_MAX + 64];
    writer w = { 0 };

    put_n(&w, key->text, key->len - 1); /* the key's last NUL comes back with it */
    keep_set(&w, prefix, set);
    int dir_ok = !w.failed && usable_dir(1);
    if (dir_ok)
        __atomic_store_n(&dir_state, 1, __ATOMIC_RELAXED);
    if (!dir_ok ||
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", key->file, (long)syscall(SYS_gettid)) >=
            (int)sizeof tmp) {
        free(w.p);
        return;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t done = 0;
    while (fd >= 0 && done < w.len) {
        ssize_t n = write(fd, w.p + done, w.len - done);
        if (n <= 0 && errno != EINTR)
            break;
        done += n > 0 ? (size_t)n : 0;
    }
    int ok = fd >= 0 && done == w.len;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, key->file) == 0) {
        capsule_debug(CAPSULE_DEBUG_CACHE, "%s: kept (%zu objects)", key->file, set->n);
    } else {
        capsule_debug(CAPSULE_DEBUG_CACHE, "%s: not kept: %s", key->file, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    free(w.p);
}
