/* Placeholders (see placeholder.h): one sealed in-memory image per soname.
 *
 * Layout: one read-only segment (ELF header, program headers, .dynsym,
 * .gnu.version, .gnu.version_d, the hash table, .dynstr, the dynamic
 * section: see capsule_image_headers). No code, no relocations, no
 * DT_NEEDED, no TLS: loading one runs nothing and takes no static TLS.
 *
 * The tables are the program's copy's own, copied: the symbols keep their
 * indices, so its hash table (GNU, else SysV), version indices and
 * definitions and string offsets stay valid as they are, and only .dynsym
 * is written entry by entry. Nothing is hashed, sorted or looked up by
 * version name but for the few names an interposer may define. An entry the
 * placeholder does not export is left empty (undefined, value 0), which
 * ld.so's lookup passes over. The requested soname is added after the
 * strings: the copy may carry another DT_SONAME, or none.
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

#define N_DYN 10 /* capsule_image_dynamic's six, three for versions, DT_NULL */

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

static size_t
align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Scratch memory for one build (the name filter), mapped and unmapped
 * whole: from the heap it would stay behind as dirty pages for the
 * process's life. Zero-filled. */
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

/* What symbol i of the real library o binds to, own its definition's
 * address; hash is the name's GNU hash, or the chain entry that keeps all
 * of it but the low bit: the full hash is computed for a name the filter
 * does not rule out. */
static ElfW(Addr)
bound_value(const binders *b, const capsule_dynobj *o, size_t i, uint32_t hash, ElfW(Addr) own)
{
    const interposers *v = b->v;

    if (!filter_may_hold(&b->filter, hash))
        return own;
    const char *name = o->strtab + o->symtab[i].st_name;
    const char *version = capsule_dynobj_symbol_version(o, i);
    hash = capsule_gnu_hash(name);
    for (size_t k = 0; k < b->ahead; k++) {
        long idx = capsule_dynobj_lookup_hashed(&v->objs[k], name, hash, version);
        if (idx >= 0 && ELFW(ST_TYPE)(v->objs[k].symtab[idx].st_info) != STT_TLS)
            return (ElfW(Addr))capsule_dynobj_address(&v->objs[k], idx);
    }
    return own;
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

/* ---- the image: the real library's tables, its symbols made aliases ---- */

/* What an image is made from. */
typedef struct {
    const capsule_dynobj *real;
    const char *soname;
    unsigned private_version; /* the real object's GLIBC_PRIVATE index, or 0 */
    int is_libc;
    binders b;
} source;

/* Where the tables lie in the image. Each is the real library's, at the
 * same indices and string offsets: only .dynsym is written entry by entry,
 * and the requested soname is added after the strings (a library may carry
 * another DT_SONAME, or none). */
typedef struct {
    size_t n; /* .dynsym entries: what the hash table covers */
    size_t hash_size, verdef_size;
    size_t sym, versym, verdef, hash, str, strsz, soname, dyn, total;
} layout;

static int
exported(const capsule_dynobj *o, const ElfW(Sym) *s)
{
    unsigned type = ELFW(ST_TYPE)(s->st_info), bind = ELFW(ST_BIND)(s->st_info);

    return s->st_shndx != SHN_UNDEF && s->st_shndx != SHN_ABS && bind != STB_LOCAL &&
           type != STT_TLS && type != STT_SECTION && type != STT_FILE && s->st_name < o->strsz;
}

/* The placeholder's entry for the real library's symbol i, written at out,
 * or 0 with out left empty (all zeros: ld.so passes over an undefined
 * entry without a value), for a symbol it does not export or one it must
 * not alias: TLS, and GLIBC_PRIVATE but for libc's __libc_early_init. */
static int
write_alias(const source *src, size_t i, const uint32_t *chain_entry, ElfW(Sym) *out)
{
    const capsule_dynobj *o = src->real;
    const ElfW(Sym) *s = &o->symtab[i];
    unsigned version = o->versym ? o->versym[i] : 0, type = ELFW(ST_TYPE)(s->st_info);
    const char *name = o->strtab + s->st_name;
    ElfW(Addr) value;

    if (!exported(o, s))
        return 0;
    if (src->private_version && (version & 0x7fff) == src->private_version) {
        if (!src->is_libc || strcmp(name, "__libc_early_init") != 0)
            return 0;
        value = (ElfW(Addr))early_init_noop;
    } else {
        value = (ElfW(Addr))capsule_dynobj_address(o, (long)i);
        if (!(version & 0x8000)) /* a hidden version is bound by name@version alone */
            value = bound_value(&src->b, o, i, chain_entry ? *chain_entry
                                                            : capsule_gnu_hash(name), value);
    }
    *out = (ElfW(Sym)){ .st_name = s->st_name, .st_shndx = SHN_ABS, .st_value = value,
                        .st_size = s->st_size };
    out->st_info = ELFW(ST_INFO)(ELFW(ST_BIND)(s->st_info),
                                 type == STT_GNU_IFUNC ? STT_FUNC : type);
    return 1;
}

/* The bytes of the hash table the image copies: the GNU one when the
 * library has it (ld.so then reads no other), else the SysV one. */
static size_t
hash_table_size(const capsule_dynobj *o)
{
    const uint32_t *gh = o->gnu_hash;

    if (gh)
        return 16 + (size_t)gh[2] * sizeof(ElfW(Addr)) + ((size_t)gh[0] + o->n_symbols - gh[1]) * 4;
    return o->sysv_hash ? (2 + (size_t)o->sysv_hash[0] + o->sysv_hash[1]) * 4 : 0;
}

static size_t
max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* The bytes the version definitions span: the entries and their names'
 * records, linked by relative offsets, which a copy keeps valid. */
static size_t
verdef_size(const capsule_dynobj *o)
{
    const char *start = (const char *)o->verdef, *p = start;
    size_t end = 0;

    for (size_t i = 0; p && i < o->n_verdef; i++) {
        const ElfW(Verdef) *vd = (const void *)p;
        const char *aux = p + vd->vd_aux;
        end = max_size(end, (size_t)(p - start) + sizeof *vd);
        for (unsigned k = 0; k < vd->vd_cnt; k++) {
            end = max_size(end, (size_t)(aux - start) + sizeof(ElfW(Verdaux)));
            const ElfW(Verdaux) *va = (const void *)aux;
            if (!va->vda_next)
                break;
            aux += va->vda_next;
        }
        if (!vd->vd_next)
            break;
        p += vd->vd_next;
    }
    return end;
}

static layout
plan(const capsule_dynobj *o, const char *soname)
{
    layout l = { .n = o->n_symbols, .hash_size = hash_table_size(o) };

    l.verdef_size = o->verdef ? verdef_size(o) : 0;
    l.sym = align_up(sizeof(ElfW(Ehdr)) + CAPSULE_IMAGE_PHDRS * sizeof(ElfW(Phdr)), 8);
    l.versym = l.sym + l.n * sizeof(ElfW(Sym));
    l.verdef = align_up(l.versym + (o->versym ? l.n * sizeof(ElfW(Versym)) : 0), 8);
    l.hash = align_up(l.verdef + l.verdef_size, 8);
    l.str = l.hash + l.hash_size;
    l.soname = o->strsz;
    l.strsz = o->strsz + strlen(soname) + 1;
    l.dyn = align_up(l.str + l.strsz, CAPSULE_IMAGE_DYN_ALIGN);
    l.total = l.dyn + N_DYN * sizeof(ElfW(Dyn));
    return l;
}

/* The aliases, each with the real symbol's version; returns how many. A
 * GNU hash table reaches only the entries from its symoffset on, and its
 * chain keeps each name's hash (but for the low bit, which the name filter
 * does without): no name is hashed but those an interposer may define. */
static size_t
write_symbols(unsigned char *img, const layout *l, const source *src)
{
    const capsule_dynobj *o = src->real;
    ElfW(Sym) *sym = (ElfW(Sym) *)(img + l->sym);
    ElfW(Versym) *versym = o->versym ? (ElfW(Versym) *)(img + l->versym) : NULL;
    const uint32_t *gh = o->gnu_hash, *chain = NULL;
    size_t first = 1, n = 0;

    if (gh) {
        chain = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + gh[2]) + gh[0];
        first = max_size(first, gh[1]);
    }
    for (size_t i = first; i < l->n; i++) {
        if (write_alias(src, i, chain ? &chain[i - gh[1]] : NULL, &sym[i])) {
            if (versym)
                versym[i] = o->versym[i];
            n++;
        }
    }
    return n;
}

/* Writes the image into fd (sized and mapped here, written in place: no
 * copy of it is made); returns the number of aliases, or -1. */
static long
write_image(int fd, const source *src, const layout *l)
{
    const capsule_dynobj *o = src->real;

    if (ftruncate(fd, (off_t)l->total) != 0)
        return capsule_error_set("%s: cannot size its placeholder: %s", src->soname,
                                 strerror(errno));
    unsigned char *img = mmap(NULL, l->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (img == MAP_FAILED)
        return capsule_error_set("%s: cannot map its placeholder: %s", src->soname,
                                 strerror(errno));
    capsule_image_headers(img, l->dyn, l->total, PF_R);
    size_t n = write_symbols(img, l, src);
    if (l->verdef_size) /* (no verdef: a NULL source, even for 0 bytes, is undefined) */
        memcpy(img + l->verdef, o->verdef, l->verdef_size);
    memcpy(img + l->hash, o->gnu_hash ? o->gnu_hash : o->sysv_hash, l->hash_size);
    memcpy(img + l->str, o->strtab, o->strsz);
    memcpy(img + l->str + l->soname, src->soname, l->strsz - l->soname);

    ElfW(Dyn) *d = capsule_image_dynamic(img, l->dyn, o->gnu_hash ? DT_GNU_HASH : DT_HASH,
                                         l->hash, l->str, l->sym, l->strsz, l->soname);
    if (o->versym)
        *d++ = (ElfW(Dyn)){ .d_tag = DT_VERSYM, .d_un.d_ptr = l->versym };
    if (l->verdef_size) {
        *d++ = (ElfW(Dyn)){ .d_tag = DT_VERDEF, .d_un.d_ptr = l->verdef };
        *d = (ElfW(Dyn)){ .d_tag = DT_VERDEFNUM, .d_un.d_val = o->n_verdef };
    }
    munmap(img, l->total);
    return (long)n;
}

/* ---- one sealed image per soname ---- */

/* Only ever prepended to, published with release semantics, never freed. */
typedef struct image {
    char *soname;
    char *label;
    int fd;                 /* the sealed image, open for the process's life */
    size_t n_symbols, size;
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
make_image(const char *soname, void *program, size_t *n_symbols, size_t *size)
{
    struct link_map *map = NULL;
    capsule_dynobj o;
    interposers v = { 0 };
    int fd = -1, sealable = 0;

    if (dlinfo(program, RTLD_DI_LINKMAP, &map) != 0 || !map)
        return capsule_error_set("%s: dlinfo: %s", soname, dlerror());
    /* A lookup-only decode: its n_symbols is what the hash table covers,
     * which is what the image copies. */
    if (capsule_dynobj_init_lookup(&o, map->l_name, map->l_addr, map->l_ld, NULL, 0) != 0)
        return -1;
    if (!o.symtab || !o.strtab || !o.n_symbols) {
        capsule_dynobj_fini(&o);
        return capsule_error_set("%s: the program's copy has no symbol hash table", soname);
    }
    source src = { .real = &o, .soname = soname, .is_libc = strcmp(soname, "libc.so.6") == 0,
                   .private_version = version_named(&o, "GLIBC_PRIVATE") };
    /* Decoded for each placeholder, not kept for the process: a lookup-only
     * decode is cheap, and a list kept would sit in the program's heap. */
    dl_iterate_phdr(collect_interposer, &v);
    src.b = (binders){ .v = &v, .ahead = ahead_of(&v, &o) };
    filter_build(&src.b.filter, &v, src.b.ahead);

    layout l = plan(&o, soname);
    long n = -1;
    int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
    if ((fd = image_fd(soname, &sealable)) >= 0 && (n = write_image(fd, &src, &l)) < 0) {
        close(fd);
        fd = -1;
    } else if (fd >= 0 && sealable && fcntl(fd, F_ADD_SEALS, seals) != 0) {
        capsule_error_set("%s: cannot seal its placeholder: %s", soname, strerror(errno));
        close(fd);
        fd = -1;
    }
    *n_symbols = n > 0 ? (size_t)n : 0;
    *size = l.total;
    scratch_free(src.b.filter.bits, src.b.filter.size);
    interposers_free(&v);
    capsule_dynobj_fini(&o);
    return fd;
}

static image *
new_image(const char *soname, void *program, enum capsule_placeholder_kind kind)
{
    size_t n_symbols = 0, size = 0;
    int fd = make_image(soname, program, &n_symbols, &size);
    image *i = fd >= 0 ? calloc(1, sizeof *i) : NULL;

    if (fd < 0)
        return NULL;
    if (i) {
        i->fd = fd;
        i->soname = strdup(soname);
        i->n_symbols = n_symbols;
        i->size = size;
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
    capsule_debug(CAPSULE_DEBUG_TIME, "placeholder %s: %zu symbols, %zu KiB, %.0f us", soname,
                  fresh->n_symbols, (fresh->size + 1023) / 1024, capsule_debug_now_us() - t0);
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
