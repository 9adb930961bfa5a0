/* Placeholders (see placeholder.h): one sealed in-memory image per soname.
 *
 * Layout: one read-only segment (ELF header, program headers, .dynsym,
 * .gnu.version, .gnu.version_d, GNU hash, .dynstr, the dynamic section:
 * see capsule_image_headers). No code, no relocations, no DT_NEEDED, no
 * TLS: loading one runs nothing and takes no static TLS.
 *
 * GLIBC_PRIVATE symbols are left out (300 of libc's 3,000): only glibc's
 * own libraries use them, and in a capsule those are placeholders too. The
 * version node stays (every verdef is copied), and libc's
 * __libc_early_init, the one ld.so looks up, stays.
 *
 * Symbols are SHN_ABS: glibc (since 2.28) does not add the object's load
 * base to them, so st_value is the run-time address, for functions and data
 * alike. IFUNCs are resolved once (STT_FUNC in the placeholder). TLS
 * symbols are left out (a TLS offset cannot be aliased): libc's (errno,
 * __resp, __h_errno ...) are GLIBC_PRIVATE and only glibc's own libraries
 * use them, which is why every glibc library in a capsule is a placeholder.
 * Every version definition is copied, also those no symbol uses: ld.so
 * checks a DT_VERNEED against the verdefs of the object of that soname.
 *
 * What a name binds to: the first definition among the objects the program
 * loaded ahead of its libc.so.6 (the executable, LD_PRELOAD libraries, the
 * libraries linked before libc): exactly those can interpose on glibc, and
 * they are in the global scope, first. Else the library's own definition.
 * A variable the executable holds a COPY of is defined by the executable,
 * so that copy is what the capsule reaches too.
 *
 * libc.so.6's __libc_early_init: ld.so calls it in the first object of a
 * namespace whose soname is libc.so.6, when a dlopen brought it. The
 * program's own would re-run libc's start-up for a second libc (single-
 * threaded flag, sbrk, ctype, thread attributes): the placeholder's is a
 * no-op. */
#define _GNU_SOURCE
#include "placeholder.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "debug.h"
#include "dynobj.h"
#include "forklock.h"
#include "objects.h"

#define N_DYN 12 /* capsule_image_dynamic's six, three for versions, DT_NULLs */

typedef struct {
    ElfW(Addr) value;
    uint32_t sym;       /* the real library's symbol index (name, size) */
    uint32_t hash;      /* GNU hash of the name */
    uint32_t bucket;    /* hash % the placeholder's bucket count */
    ElfW(Half) version; /* index in the placeholder's verdef, | 0x8000 when hidden */
    unsigned char info;
} alias;

typedef struct {
    const capsule_dynobj *real;
    alias *syms;
    size_t n, cap;
    uint32_t *order;       /* syms by bucket (the GNU hash table's order) */
    uint32_t *same;        /* per position: the earlier one with its name, or NO_SAME */
    const char **versions; /* index 2.. : the placeholder's version nodes */
    size_t n_versions, cap_versions;
    ElfW(Half) *by_real;   /* the real object's version index -> ours (0: not yet) */
    size_t n_by_real;
    unsigned private_version; /* the real object's GLIBC_PRIVATE index, or 0 */
} table;

/* The objects that can interpose on the real library, decoded. */
typedef struct {
    capsule_dynobj *objs;
    size_t n, cap;
} interposers;

/* The names the interposers ahead of a library define, one bit per GNU
 * hash value (without its low bit, which a chain entry does not keep): a
 * name whose bit is clear is none of theirs, and binds to the library's
 * own definition without a lookup in each, which is most names. */
typedef struct {
    uint64_t *bits; /* NULL: no filter (an interposer without a GNU hash) */
    size_t mask, size;
} name_filter;

static uint32_t
elf_hash(const char *name)
{
    uint32_t h = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h << 4) + *p;
        uint32_t g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

static size_t
align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Scratch memory for one build, mapped and unmapped whole: the symbol
 * table is large, made once, and would otherwise stay behind as dirty heap
 * pages for the process's life. Zero-filled. */
static void *
scratch(size_t size)
{
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void
scratch_free(void *p, size_t size)
{
    if (p)
        munmap(p, size ? size : 1);
}

/* glibc's per-namespace libc set-up, as a placeholder's libc answers it. */
static void
early_init_noop(_Bool initial)
{
    (void)initial;
}

/* ---- what each name binds to ---- */

static int
is_soname(const struct dl_phdr_info *info, const char *soname)
{
    const char *s = capsule_dyn_string(capsule_phdr_dynamic(info), info->dlpi_addr, DT_SONAME);
    return s && strcmp(s, soname) == 0;
}

static int
collect_interposer(struct dl_phdr_info *info, size_t size, void *data)
{
    interposers *v = data;
    const ElfW(Dyn) *dyn = capsule_phdr_dynamic(info);

    (void)size;
    if (is_soname(info, "libc.so.6"))
        return 1; /* what comes after cannot interpose on libc */
    if (!dyn || info->dlpi_addr == getauxval(AT_SYSINFO_EHDR) ||
        (info->dlpi_name && strncmp(info->dlpi_name, "linux-vdso", 10) == 0) ||
        capsule_grow((void **)&v->objs, &v->cap, v->n, sizeof *v->objs) != 0)
        return 0;
    if (capsule_dynobj_init_lookup(&v->objs[v->n], info->dlpi_name, info->dlpi_addr, dyn,
                                   info->dlpi_phdr, info->dlpi_phnum) == 0)
        v->n++;
    return 0;
}

static void
interposers_free(interposers *v)
{
    for (size_t i = 0; i < v->n; i++)
        capsule_dynobj_fini(&v->objs[i]);
    free(v->objs);
}

/* f for the first `ahead` interposers: about sixteen bits per name (one
 * name in sixteen passes falsely). Their n_symbols is their hash table's
 * count (capsule_dynobj_init_lookup), so each chain is read to its end.
 * Made per placeholder, in scratch memory: kept, the bits would stay dirty
 * for the process's life. */
static void
filter_build(name_filter *f, const interposers *v, size_t ahead)
{
    size_t names = 0, bits = 64;

    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < ahead; i++) {
        const capsule_dynobj *o = &v->objs[i];
        if (!o->gnu_hash || !o->symtab)
            return;
        names += o->n_symbols > o->gnu_hash[1] ? o->n_symbols - o->gnu_hash[1] : 0;
    }
    while (bits < names * 16)
        bits *= 2;
    if (!(f->bits = scratch(bits / 8)))
        return;
    f->size = bits / 8, f->mask = bits - 1;
    for (size_t i = 0; i < ahead; i++) {
        const capsule_dynobj *o = &v->objs[i];
        const uint32_t *gh = o->gnu_hash;
        uint32_t nbuckets = gh[0], symoffset = gh[1];
        const uint32_t *chain = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + gh[2]) +
                                nbuckets;
        for (size_t k = symoffset; k < o->n_symbols; k++) {
            size_t bit = (chain[k - symoffset] >> 1) & f->mask;
            f->bits[bit / 64] |= (uint64_t)1 << (bit % 64);
        }
    }
}

static int
filter_may_hold(const name_filter *f, uint32_t hash)
{
    size_t bit = (hash >> 1) & f->mask;
    return !f->bits || (f->bits[bit / 64] >> (bit % 64) & 1);
}

/* How many interposers come ahead of real (those after it cannot bind). */
static size_t
ahead_of(const interposers *v, const capsule_dynobj *real)
{
    size_t n = 0;

    while (n < v->n && !(v->objs[n].base == real->base && v->objs[n].dynamic == real->dynamic))
        n++;
    return n;
}

/* What can bind a name in place of the real library's definition. */
typedef struct {
    const interposers *v;
    size_t ahead;
    name_filter filter;
} binders;

static ElfW(Addr)
bound_value(const binders *b, const char *name, uint32_t hash, const char *version,
            ElfW(Addr) own)
{
    const interposers *v = b->v;

    if (!filter_may_hold(&b->filter, hash))
        return own;
    for (size_t i = 0; i < b->ahead; i++) {
        long idx = capsule_dynobj_lookup_hashed(&v->objs[i], name, hash, version);
        if (idx >= 0 && ELFW(ST_TYPE)(v->objs[i].symtab[idx].st_info) != STT_TLS)
            return (ElfW(Addr))capsule_dynobj_address(&v->objs[i], idx);
    }
    return own;
}

/* ---- the symbol table ---- */

static const char *
alias_name(const table *t, const alias *a)
{
    return t->real->strtab + t->real->symtab[a->sym].st_name;
}

/* The placeholder's index for a version name (2 and up), added on first use. */
static int
version_index(table *t, const char *name, ElfW(Half) *out)
{
    for (size_t i = 0; i < t->n_versions; i++) {
        if (strcmp(t->versions[i], name) == 0) {
            *out = (ElfW(Half))(i + 2);
            return 0;
        }
    }
    if (t->n_versions >= 0x7ff0)
        return capsule_error_set("too many version definitions");
    if (capsule_grow((void **)&t->versions, &t->cap_versions, t->n_versions,
                     sizeof *t->versions) != 0)
        return -1;
    t->versions[t->n_versions++] = name;
    *out = (ElfW(Half))(t->n_versions + 1);
    return 0;
}

/* Every version the real library defines, in its order, used or not. */
static int
copy_verdefs(const capsule_dynobj *o, table *t)
{
    const ElfW(Verdef) *vd = o->verdef;
    ElfW(Half) index;

    for (size_t i = 0; vd && i < o->n_verdef; i++) {
        const ElfW(Verdaux) *aux = (const void *)((const char *)vd + vd->vd_aux);
        if (!(vd->vd_flags & VER_FLG_BASE) && aux->vda_name < o->strsz &&
            version_index(t, o->strtab + aux->vda_name, &index) != 0)
            return -1;
        if (!vd->vd_next)
            break;
        vd = (const void *)((const char *)vd + vd->vd_next);
    }
    return 0;
}

static int
exported(const capsule_dynobj *o, const ElfW(Sym) *s)
{
    unsigned type = ELFW(ST_TYPE)(s->st_info), bind = ELFW(ST_BIND)(s->st_info);

    return s->st_shndx != SHN_UNDEF && s->st_shndx != SHN_ABS && bind != STB_LOCAL &&
           type != STT_TLS && type != STT_SECTION && type != STT_FILE && s->st_name < o->strsz;
}

static int
add_symbol(const binders *b, int is_libc, table *t, size_t i)
{
    const capsule_dynobj *o = t->real;
    const ElfW(Sym) *s = &o->symtab[i];
    unsigned type = ELFW(ST_TYPE)(s->st_info);
    alias a = { .sym = (uint32_t)i, .version = 1 };
    const char *name = o->strtab + s->st_name, *vname = NULL;

    unsigned real = o->versym ? o->versym[i] & 0x7fff : 0;
    int early_init = 0;
    if (real && real == t->private_version) {
        /* glibc's own libraries' (placeholders in a capsule): never looked
         * up, but for the one ld.so calls. */
        if (!is_libc || strcmp(name, "__libc_early_init") != 0)
            return 0;
        early_init = 1;
    }
    a.info = ELFW(ST_INFO)(ELFW(ST_BIND)(s->st_info), type == STT_GNU_IFUNC ? STT_FUNC : type);
    if (real >= 2 && (vname = capsule_dynobj_symbol_version(o, i))) {
        if (real < t->n_by_real && t->by_real[real]) {
            a.version = t->by_real[real];
        } else if (version_index(t, vname, &a.version) != 0) {
            return -1;
        } else if (real < t->n_by_real) {
            t->by_real[real] = a.version;
        }
        a.version |= o->versym[i] & 0x8000;
    }
    a.hash = capsule_gnu_hash(name);
    if (early_init) {
        a.value = (ElfW(Addr))early_init_noop;
    } else {
        ElfW(Addr) own = (ElfW(Addr))capsule_dynobj_address(o, (long)i);
        a.value = a.version & 0x8000 ? own : bound_value(b, name, a.hash, vname, own);
    }
    if (t->n == t->cap)
        return capsule_error_set("more symbols than the table has");
    t->syms[t->n++] = a;
    return 0;
}

static unsigned
version_named(const capsule_dynobj *o, const char *name)
{
    for (size_t v = 2; v < o->n_versions; v++) {
        if (o->version_names[v] && strcmp(o->version_names[v], name) == 0)
            return (unsigned)v;
    }
    return 0;
}

static int
collect(const capsule_dynobj *o, const char *soname, table *t)
{
    interposers v = { 0 };
    int rc = copy_verdefs(o, t);

    t->real = o;
    t->private_version = version_named(o, "GLIBC_PRIVATE");
    if (rc == 0 && !(t->syms = scratch(o->n_symbols * sizeof *t->syms)))
        rc = capsule_error_set("out of memory");
    t->cap = t->syms ? o->n_symbols : 0;
    /* Symbols share a few versions: each is matched by name once. */
    if (rc == 0 && o->n_versions && !(t->by_real = calloc(o->n_versions, sizeof *t->by_real)))
        rc = capsule_error_set("out of memory");
    t->n_by_real = t->by_real ? o->n_versions : 0;

    /* Decoded for each placeholder, not kept for the process: a lookup-only
     * decode is cheap, and a list kept would sit in the program's heap. */
    dl_iterate_phdr(collect_interposer, &v);
    binders b = { .v = &v };
    b.ahead = ahead_of(b.v, o);
    filter_build(&b.filter, b.v, b.ahead);
    int is_libc = strcmp(soname, "libc.so.6") == 0;
    for (size_t i = 1; rc == 0 && i < o->n_symbols; i++) {
        if (exported(o, &o->symtab[i]))
            rc = add_symbol(&b, is_libc, t, i);
    }
    scratch_free(b.filter.bits, b.filter.size);
    interposers_free(&v);
    return rc;
}

/* ---- the image ---- */

typedef struct {
    size_t sym, versym, verdef, hash, str, text_end, dyn, total, strsz;
    size_t nbuckets, bloom_words;
} layout;

/* About four names per bucket, the bloom filter rejecting most misses:
 * ld.so's lookups in a placeholder stay short, its table small. */
static size_t
bucket_count(size_t n)
{
    return n / 4 + 1;
}

/* t->order: the symbols in GNU hash bucket order, as the table requires:
 * a counting sort (thousands of symbols, a few thousand buckets), stable. */
static int
sort_by_bucket(table *t, uint32_t nb)
{
    uint32_t *start = calloc((size_t)nb + 1, sizeof *start);

    t->order = malloc((t->n ? t->n : 1) * sizeof *t->order);
    if (!start || !t->order) {
        free(start);
        return capsule_error_set("out of memory");
    }
    for (size_t k = 0; k < t->n; k++) {
        t->syms[k].bucket = t->syms[k].hash % nb;
        start[t->syms[k].bucket + 1]++;
    }
    for (uint32_t b = 0; b < nb; b++)
        start[b + 1] += start[b];
    for (size_t k = 0; k < t->n; k++)
        t->order[start[t->syms[k].bucket]++] = (uint32_t)k;
    free(start);
    return 0;
}

static const alias *
at(const table *t, size_t position)
{
    return &t->syms[t->order[position]];
}

#define NO_SAME UINT32_MAX

/* t->same: for each position, the earlier one with the same name (a name
 * defined in several versions), whose string it shares; in bucket order
 * that one is in its bucket, just before it. */
static int
find_same_names(table *t)
{
    if (!(t->same = scratch(t->n * sizeof *t->same)))
        return capsule_error_set("out of memory");
    for (size_t p = 0; p < t->n; p++) {
        const alias *a = at(t, p);
        t->same[p] = NO_SAME;
        for (size_t q = p; q-- > 0 && at(t, q)->bucket == a->bucket;) {
            if (at(t, q)->hash == a->hash &&
                strcmp(alias_name(t, at(t, q)), alias_name(t, a)) == 0) {
                t->same[p] = (uint32_t)q;
                break;
            }
        }
    }
    return 0;
}

/* After sort_by_bucket(t, bucket_count(t->n)) and find_same_names(t). */
static layout
plan(const table *t, const char *soname)
{
    layout l;
    size_t strsz = 1 + strlen(soname) + 1, n = t->n;

    l.nbuckets = bucket_count(n);
    for (size_t p = 0; p < n; p++) {
        if (t->same[p] == NO_SAME)
            strsz += strlen(alias_name(t, at(t, p))) + 1;
    }
    for (size_t i = 0; i < t->n_versions; i++)
        strsz += strlen(t->versions[i]) + 1;
    l.strsz = strsz;
    l.bloom_words = 1;
    while (l.bloom_words * sizeof(ElfW(Addr)) * 8 < n && l.bloom_words < 4096)
        l.bloom_words *= 2;
    l.sym = align_up(sizeof(ElfW(Ehdr)) + CAPSULE_IMAGE_PHDRS * sizeof(ElfW(Phdr)), 8);
    l.versym = l.sym + (n + 1) * sizeof(ElfW(Sym));
    l.verdef = align_up(l.versym + (n + 1) * sizeof(ElfW(Half)), 8);
    l.hash = l.verdef + (t->n_versions + 1) * (sizeof(ElfW(Verdef)) + sizeof(ElfW(Verdaux)));
    l.hash = align_up(l.hash, 8);
    l.str = l.hash + 16 + l.bloom_words * sizeof(ElfW(Addr)) + (l.nbuckets + n) * 4;
    l.text_end = l.str + strsz;
    l.dyn = align_up(l.text_end, CAPSULE_IMAGE_DYN_ALIGN);
    l.total = l.dyn + N_DYN * sizeof(ElfW(Dyn));
    return l;
}

static size_t
put_string(unsigned char *img, const layout *l, size_t *at, const char *s)
{
    size_t off = *at, len = strlen(s) + 1;

    memcpy(img + l->str + off, s, len);
    *at += len;
    return off;
}

static void
write_verdef(unsigned char *img, const layout *l, const table *t, const char *soname,
             size_t *str)
{
    unsigned char *p = img + l->verdef;
    size_t nv = t->n_versions + 1, step = sizeof(ElfW(Verdef)) + sizeof(ElfW(Verdaux));

    for (size_t i = 0; i < nv; i++, p += step) {
        const char *name = i ? t->versions[i - 1] : soname;
        ElfW(Verdef) *vd = (ElfW(Verdef) *)p;
        ElfW(Verdaux) *va = (ElfW(Verdaux) *)(p + sizeof *vd);
        vd->vd_version = VER_DEF_CURRENT;
        vd->vd_flags = i ? 0 : VER_FLG_BASE;
        vd->vd_ndx = (ElfW(Half))(i + 1);
        vd->vd_cnt = 1;
        vd->vd_hash = elf_hash(name);
        vd->vd_aux = sizeof *vd;
        vd->vd_next = i + 1 < nv ? (ElfW(Word))step : 0;
        va->vda_name = i ? (ElfW(Word))put_string(img, l, str, name) : 1;
        va->vda_next = 0;
    }
}

static uint32_t
alias_hash(const void *ctx, size_t p)
{
    return at(ctx, p)->hash;
}

static void
write_symbols(unsigned char *img, const layout *l, const table *t, size_t *str)
{
    ElfW(Sym) *sym = (ElfW(Sym) *)(img + l->sym);
    ElfW(Half) *versym = (ElfW(Half) *)(img + l->versym);

    for (size_t p = 0; p < t->n; p++) {
        const alias *a = at(t, p);
        ElfW(Sym) *y = &sym[p + 1];
        uint32_t same = t->same[p];

        y->st_name = same != NO_SAME ? sym[same + 1].st_name
                                     : (uint32_t)put_string(img, l, str, alias_name(t, a));
        y->st_info = a->info;
        y->st_shndx = SHN_ABS;
        y->st_value = a->value;
        y->st_size = t->real->symtab[a->sym].st_size;
        versym[p + 1] = a->version;
    }
    capsule_image_gnu_hash((uint32_t *)(img + l->hash), t->n, (uint32_t)l->nbuckets,
                           (uint32_t)l->bloom_words, alias_hash, t);
}

static void
write_dynamic(unsigned char *img, const layout *l, size_t n_versions)
{
    ElfW(Dyn) *d = capsule_image_dynamic(img, l->dyn, l->hash, l->str, l->sym, l->strsz);

    *d++ = (ElfW(Dyn)){ .d_tag = DT_VERSYM, .d_un.d_ptr = l->versym };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_VERDEF, .d_un.d_ptr = l->verdef };
    *d = (ElfW(Dyn)){ .d_tag = DT_VERDEFNUM, .d_un.d_val = n_versions + 1 };
}

/* Writes the image into fd (sized and mapped here, written in place: no
 * copy of it is made). */
static int
write_image(int fd, const char *soname, const table *t, const layout *l)
{
    size_t str = 1;

    if (ftruncate(fd, (off_t)l->total) != 0)
        return capsule_error_set("%s: cannot size its placeholder: %s", soname, strerror(errno));
    unsigned char *img = mmap(NULL, l->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (img == MAP_FAILED)
        return capsule_error_set("%s: cannot map its placeholder: %s", soname, strerror(errno));
    capsule_image_headers(img, l->dyn, l->total, PF_R);
    put_string(img, l, &str, soname);
    write_verdef(img, l, t, soname, &str);
    write_symbols(img, l, t, &str);
    write_dynamic(img, l, t->n_versions);
    munmap(img, l->total);
    return 0;
}

/* ---- one sealed image per soname ---- */

/* Only ever prepended to, published with release semantics, never freed. */
typedef struct image {
    char *soname;
    char *label;
    int fd;                 /* the sealed image, open for the process's life */
    size_t n_symbols;
    struct image *next;
} image;

static pthread_mutex_t images_lock = PTHREAD_MUTEX_INITIALIZER;
static image *images;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&images_lock, CAPSULE_LOCK_IMAGES);
}

static image *
find_image(const char *soname)
{
    for (image *i = __atomic_load_n(&images, __ATOMIC_ACQUIRE); i; i = i->next) {
        if (strcmp(i->soname, soname) == 0)
            return i;
    }
    return NULL;
}

/* A descriptor for the image: a memfd, sealed once written; else an
 * unlinked temporary file. */
static int
image_fd(const char *soname, int *sealable)
{
    char name[128], tmpl[512];
    const char *dir = secure_getenv("TMPDIR");

    snprintf(name, sizeof name, "capsule-%s", soname);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    *sealable = fd >= 0;
    if (fd < 0) {
        snprintf(tmpl, sizeof tmpl, "%s/capsule-image-XXXXXX", dir && dir[0] ? dir : "/tmp");
        if ((fd = mkostemp(tmpl, O_CLOEXEC)) < 0)
            return capsule_error_set("%s: cannot create its placeholder in %s: %s", soname,
                                     tmpl, strerror(errno));
        unlink(tmpl);
    }
    return fd;
}

/* The sealed image of the program's copy of soname; -1 with an error. */
static int
make_image(const char *soname, void *program, size_t *n_symbols)
{
    struct link_map *map = NULL;
    capsule_dynobj o;
    table t = { 0 };
    int fd = -1, sealable = 0;

    if (dlinfo(program, RTLD_DI_LINKMAP, &map) != 0 || !map)
        return capsule_error_set("%s: dlinfo: %s", soname, dlerror());
    if (capsule_dynobj_from_link_map(&o, map) != 0)
        return -1;
    if (collect(&o, soname, &t) == 0 && sort_by_bucket(&t, (uint32_t)bucket_count(t.n)) == 0 &&
        find_same_names(&t) == 0) {
        layout l = plan(&t, soname);
        fd = image_fd(soname, &sealable);
        int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
        if (fd >= 0 && write_image(fd, soname, &t, &l) != 0) {
            close(fd);
            fd = -1;
        } else if (fd >= 0 && sealable && fcntl(fd, F_ADD_SEALS, seals) != 0) {
            capsule_error_set("%s: cannot seal its placeholder: %s", soname, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    *n_symbols = t.n;
    capsule_dynobj_fini(&o);
    scratch_free(t.syms, t.cap * sizeof *t.syms);
    free(t.order);
    scratch_free(t.same, t.n * sizeof *t.same);
    free(t.versions);
    free(t.by_real);
    return fd;
}

static image *
new_image(const char *soname, void *program, enum capsule_placeholder_kind kind)
{
    size_t n_symbols = 0;
    int fd = make_image(soname, program, &n_symbols);
    image *i = fd >= 0 ? calloc(1, sizeof *i) : NULL;

    if (fd < 0)
        return NULL;
    if (i) {
        i->fd = fd;
        i->soname = strdup(soname);
        i->n_symbols = n_symbols;
        if (asprintf(&i->label, "%s: %s",
                     kind == CAPSULE_PLACEHOLDER_GLIBC ? "glibc" : "shared", soname) < 0)
            i->label = NULL;
    }
    if (!i || !i->soname || !i->label) {
        close(fd);
        if (i) {
            free(i->soname);
            free(i->label);
            free(i);
        }
        capsule_error_set("out of memory");
        return NULL;
    }
    return i;
}

/* The image of soname, made once: a thread that loses the race to make it
 * drops its own. No lock is held while the program's objects are read. */
static image *
image_of(const char *soname, void *program, enum capsule_placeholder_kind kind)
{
    image *i = find_image(soname);

    if (i)
        return i;
    double t0 = capsule_debug_now_us();
    image *fresh = new_image(soname, program, kind);
    if (!fresh)
        return NULL;
    capsule_debug(CAPSULE_DEBUG_TIME, "placeholder %s: %zu symbols, %.0f us", soname,
                  fresh->n_symbols, capsule_debug_now_us() - t0);
    pthread_mutex_lock(&images_lock);
    i = find_image(soname);
    if (!i) {
        fresh->next = images;
        __atomic_store_n(&images, fresh, __ATOMIC_RELEASE);
        i = fresh, fresh = NULL;
    }
    pthread_mutex_unlock(&images_lock);
    if (fresh) {
        close(fresh->fd);
        free(fresh->soname);
        free(fresh->label);
        free(fresh);
    }
    return i;
}

/* ld.so matches a path against the names of the namespace's objects before
 * opening it, and an earlier image loaded through a descriptor number since
 * closed keeps that name: load through a number no object there is named by. */
static void *
open_image(const image *i, Lmid_t lmid)
{
    char path[64];
    int fd = i->fd, dup_fd = -1;
    void *h = NULL;

    for (int tries = 0; tries < 64 && !h; tries++) {
        capsule_image_name(fd, path, sizeof path);
        /* Only a name libcapsule gave an object there can be taken (ld.so
         * would otherwise open the image just to compare it). */
        void *old = capsule_objects_by_path(lmid, path)
                        ? dlmopen(lmid, path, RTLD_LAZY | RTLD_NOLOAD) : NULL;
        if (!old) {
            (void)dlerror();
            h = dlmopen(lmid, path, RTLD_NOW | RTLD_LOCAL);
            if (!h)
                capsule_error_set("%s", dlerror());
            break;
        }
        dlclose(old);
        int higher = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
        if (dup_fd >= 0)
            close(dup_fd);
        if (higher < 0)
            break;
        fd = dup_fd = higher;
    }
    if (dup_fd >= 0 && !h)
        close(dup_fd); /* else open while loaded: a debugger reads the object by its name */
    if (!h && !capsule_error()[0])
        capsule_error_set("no unused name for an in-memory object");
    return h;
}

void *
capsule_placeholder_load(Lmid_t lmid, const char *soname, void *program,
                         enum capsule_placeholder_kind kind)
{
    image *i = image_of(soname, program, kind);

    if (!i)
        return NULL;
    capsule_error_set("%s", "");
    void *h = open_image(i, lmid);
    if (!h) {
        char why[512];
        snprintf(why, sizeof why, "%s", capsule_error());
        capsule_error_set("%s: loading its placeholder: %s", soname, why);
        return NULL;
    }
    if (!capsule_objects_add(h, lmid, CAPSULE_OBJECT_PLACEHOLDER, i->label))
        return NULL;
    capsule_debug(CAPSULE_DEBUG_NS, "namespace %ld: placeholder %s (%zu symbols)", (long)lmid,
                  i->label, i->n_symbols);
    return h;
}
