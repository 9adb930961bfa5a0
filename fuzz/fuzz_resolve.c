/* libFuzzer harness: path and symlink resolution confined to a prefix, and
 * dependency resolution under it. The input describes a small tree, built
 * fresh for each run under a temporary directory, one line per item:
 *
 *   D<path>                      directory (parents made as needed)
 *   L<path>\t<target>            symlink
 *   F<path>[\t<needed>...]       tiny ELF shared object with these DT_NEEDED;
 *                                a field S:<x> / P:<x> / R:<x> sets DT_SONAME /
 *                                DT_RPATH / DT_RUNPATH instead
 *   C<soname>\t<path>            an entry of etc/ld.so.cache (new format)
 *   Q<path>                      resolve this path inside the prefix
 *   N<soname>                    resolve this library and its dependencies
 *
 * Checked: a resolved path is prefix + a clean absolute path none of whose
 * components is a symlink, the kernel resolves it inside the prefix, and a
 * dependency set lists every object after the objects it needs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debug.h"
#include "elfarch.h"
#include "resolve.h"

#define MAX_LINES 48
#define MAX_FIELDS 12
#define MAX_LINE 400

static char root[PATH_MAX], prefix[PATH_MAX], real_prefix[PATH_MAX], plans[PATH_MAX];

static void
remove_root(void)
{
    rmdir(root);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    snprintf(root, sizeof root, "%s/capsule-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_root);
    snprintf(prefix, sizeof prefix, "%s/p", root);
    /* Each resolution is kept here and the same one taken back (plancache.c). */
    snprintf(plans, sizeof plans, "%s/plans", root);
    setenv("CAPSULE_CACHE_DIR", plans, 1);
    if (getenv("CAPSULE_FUZZ_DEBUG"))
        capsule_debug_flags = ~0u;
    return 0;
}

/* ---- building the tree without ever writing outside it ---- */

/* Opens the directory that will hold the last component of path, creating
 * the ones before it; never follows a symlink. Returns an fd and sets *name. */
static int
parent_dir(const char *path, char *name)
{
    char buf[MAX_LINE + 1];
    int fd = open(prefix, O_DIRECTORY | O_RDONLY | O_CLOEXEC);

    snprintf(buf, sizeof buf, "%s", path);
    name[0] = '\0';
    for (char *save = NULL, *comp = strtok_r(buf, "/", &save); comp && fd >= 0;
         comp = strtok_r(NULL, "/", &save)) {
        if (!strcmp(comp, ".") || !strcmp(comp, "..") || strlen(comp) > NAME_MAX)
            continue;
        if (name[0]) {
            mkdirat(fd, name, 0755);
            int next = openat(fd, name, O_DIRECTORY | O_NOFOLLOW | O_RDONLY | O_CLOEXEC);
            close(fd);
            fd = next;
        }
        strcpy(name, comp);
    }
    if (fd >= 0 && !name[0]) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
put_u16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void
put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void
put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* A minimal ELF64 shared object: header, PT_LOAD + PT_DYNAMIC, the dynamic
 * section, its string table. */
static size_t
make_elf(unsigned char *out, size_t cap, char **fields, size_t n)
{
    size_t n_dyn = n + 3, dyn = 64 + 2 * 56, str = dyn + n_dyn * 16, strsz = 1;
    unsigned char *d = out + dyn;

    for (size_t i = 0; i < n; i++)
        strsz += strlen(fields[i]) + 1;
    if (str + strsz > cap)
        return 0;
    memset(out, 0, str + strsz);
    memcpy(out, ELFMAG, SELFMAG);
    out[EI_CLASS] = ELFCLASS64;
    out[EI_DATA] = ELFDATA2LSB;
    out[EI_VERSION] = EV_CURRENT;
    put_u16(out + 16, ET_DYN);
    put_u16(out + 18, EM_X86_64);
    put_u32(out + 20, EV_CURRENT);
    put_u64(out + 32, 64);      /* e_phoff */
    put_u16(out + 52, 64);      /* e_ehsize */
    put_u16(out + 54, 56);      /* e_phentsize */
    put_u16(out + 56, 2);       /* e_phnum */
    unsigned char *ph = out + 64;
    put_u32(ph, PT_LOAD);
    put_u32(ph + 4, PF_R);
    put_u64(ph + 32, str + strsz);
    put_u64(ph + 40, str + strsz);
    ph += 56;
    put_u32(ph, PT_DYNAMIC);
    put_u64(ph + 8, dyn);
    put_u64(ph + 16, dyn);
    put_u64(ph + 32, n_dyn * 16);
    put_u64(ph + 40, n_dyn * 16);
    size_t s = 1;
    for (size_t i = 0; i < n; i++, d += 16) {
        const char *f = fields[i];
        int64_t tag = DT_NEEDED;
        if (f[0] && f[1] == ':' && strchr("SPR", f[0])) {
            tag = f[0] == 'S' ? DT_SONAME : f[0] == 'P' ? DT_RPATH : DT_RUNPATH;
            f += 2;
        }
        put_u64(d, (uint64_t)tag);
        put_u64(d + 8, s);
        strcpy((char *)out + str + s, f);
        s += strlen(f) + 1;
    }
    put_u64(d, DT_STRTAB), put_u64(d + 8, str), d += 16;
    put_u64(d, DT_STRSZ), put_u64(d + 8, strsz);
    return str + strsz;
}

static void
write_file(const char *path, const unsigned char *data, size_t size)
{
    char name[NAME_MAX + 1];
    int dir = parent_dir(path, name);
    if (dir < 0)
        return;
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, data, size) != (ssize_t)size)
            abort();
        close(fd);
    }
    close(dir);
}

/* ld.so.cache, new format: header, 24-byte entries, strings (offsets from
 * the start of the file). */
static void
write_cache(char **keys, char **values, size_t n)
{
    static unsigned char buf[48 + MAX_LINES * (24 + 2 * MAX_LINE)];
    size_t str = 48 + n * 24, o = str;

    memset(buf, 0, str);
    memcpy(buf, "glibc-ld.so.cache1.1", 20);
    put_u32(buf + 20, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        unsigned char *e = buf + 48 + i * 24;
        put_u32(e, CAPSULE_LDCACHE_FLAGS);
        put_u32(e + 4, (uint32_t)o);
        strcpy((char *)buf + o, keys[i]);
        o += strlen(keys[i]) + 1;
        put_u32(e + 8, (uint32_t)o);
        strcpy((char *)buf + o, values[i]);
        o += strlen(values[i]) + 1;
    }
    put_u32(buf + 24, (uint32_t)(o - str));
    write_file("etc/ld.so.cache", buf, o);
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
        abort();
    return 0;
}

/* ---- the properties ---- */

static void
check_clean(const char *out, const char *in_prefix)
{
    size_t plen = strlen(prefix);
    char partial[PATH_MAX * 2], real[PATH_MAX];

    if (strncmp(out, prefix, plen) != 0 || strcmp(out + plen, in_prefix) != 0 ||
        in_prefix[0] != '/')
        abort();
    if (strstr(in_prefix, "//") || strstr(in_prefix, "/./") || strstr(in_prefix, "/../"))
        abort();
    size_t len = strlen(in_prefix);
    if (len > 1 && in_prefix[len - 1] == '/')
        abort();
    if ((len >= 2 && !strcmp(in_prefix + len - 2, "/.")) ||
        (len >= 3 && !strcmp(in_prefix + len - 3, "/..")))
        abort();
    /* No component is a symlink (as the resolver left the tree). */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && in_prefix[i] != '/')
            continue;
        struct stat st;
        snprintf(partial, sizeof partial, "%s%.*s", prefix, (int)i, in_prefix);
        if (lstat(partial, &st) == 0 && S_ISLNK(st.st_mode))
            abort();
    }
    if (realpath(out, real)) {
        size_t rlen = strlen(real_prefix);
        if (strncmp(real, real_prefix, rlen) != 0 || (real[rlen] && real[rlen] != '/'))
            abort(); /* escaped the prefix */
    }
}

static void
check_depset(const capsule_depset *set)
{
    char *seen = calloc(set->n + 1, 1);

    if (!seen || set->n_order != set->n)
        abort();
    for (size_t k = 0; k < set->n_order; k++) {
        size_t i = set->order[k];
        if (i >= set->n || seen[i])
            abort();
        const capsule_dep *d = &set->deps[i];
        check_clean(d->path, d->in_prefix);
        for (size_t j = 0; j < d->elf.n_needed; j++) {
            size_t need = capsule_depset_find(set, d->elf.needed[j]);
            if (need != CAPSULE_NO_PARENT && need != i && !seen[need])
                abort(); /* loaded before something it needs */
        }
        seen[i] = 1;
    }
    free(seen);
}

static void
same_depset(const capsule_depset *a, const capsule_depset *b)
{
    if (a->n != b->n || a->n_order != b->n_order)
        abort();
    for (size_t k = 0; k < a->n_order; k++) {
        const capsule_dep *x = &a->deps[a->order[k]], *y = &b->deps[b->order[k]];
        if (strcmp(x->path, y->path) != 0 || strcmp(x->soname, y->soname) != 0 ||
            x->elf.n_needed != y->elf.n_needed)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[MAX_LINES * (MAX_LINE + 1)];
    static unsigned char elf[4096];
    char *lines[MAX_LINES], *keys[MAX_LINES], *values[MAX_LINES], *queries[MAX_LINES];
    const char *roots[MAX_LINES];
    size_t n_lines = 0, n_cache = 0, n_queries = 0, n_roots = 0;

    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (strlen(text) != size)
        return 0; /* NUL bytes cannot be in a name */
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n_lines < MAX_LINES;
         l = strtok_r(NULL, "\n", &save)) {
        if (strlen(l) <= MAX_LINE)
            lines[n_lines++] = l;
    }
    if (mkdir(prefix, 0755) != 0 || !realpath(prefix, real_prefix))
        abort();
    for (size_t i = 0; i < n_lines; i++) {
        char *l = lines[i], *arg = l + 1, *fields[MAX_FIELDS];
        size_t n = 0;
        for (char *save = NULL, *f = strtok_r(arg, "\t", &save); f && n < MAX_FIELDS;
             f = strtok_r(NULL, "\t", &save))
            fields[n++] = f;
        if (n == 0)
            continue;
        char name[NAME_MAX + 1];
        int dir;
        switch (l[0]) {
        case 'D':
            if ((dir = parent_dir(fields[0], name)) >= 0) {
                mkdirat(dir, name, 0755);
                close(dir);
            }
            break;
        case 'L':
            if (n >= 2 && (dir = parent_dir(fields[0], name)) >= 0) {
                symlinkat(fields[1], dir, name);
                close(dir);
            }
            break;
        case 'F': {
            size_t len = make_elf(elf, sizeof elf, fields + 1, n - 1);
            if (len)
                write_file(fields[0], elf, len);
            break;
        }
        case 'C':
            if (n >= 2)
                keys[n_cache] = fields[0], values[n_cache++] = fields[1];
            break;
        case 'Q': queries[n_queries++] = fields[0]; break;
        case 'N': roots[n_roots++] = fields[0]; break;
        default: break;
        }
    }
    if (n_cache)
        write_cache(keys, values, n_cache);

    char out[PATH_MAX * 2], in_prefix[PATH_MAX];
    for (size_t i = 0; i < n_queries; i++) {
        if (capsule_path_in_prefix(prefix, queries[i], out, sizeof out, in_prefix,
                                   sizeof in_prefix) == 0)
            check_clean(out, in_prefix);
    }
    if (n_roots) {
        static const char *const exclude[] = { "libexcluded.so.1", NULL };
        capsule_depset set;
        if (capsule_resolve(prefix, roots, n_roots, exclude, &set) == 0) {
            check_depset(&set);
            /* Again: taken from what the first kept, it must say the same. */
            capsule_depset again;
            if (capsule_resolve(prefix, roots, n_roots, exclude, &again) != 0)
                abort();
            check_depset(&again);
            same_depset(&set, &again);
            capsule_depset_free(&again);
            capsule_depset_free(&set);
        } else if (!capsule_error()[0]) {
            abort();
        }
    }
    if (nftw(prefix, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 ||
        (access(plans, F_OK) == 0 && nftw(plans, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0))
        abort();
    return 0;
}
