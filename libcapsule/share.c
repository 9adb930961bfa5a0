/* Shared sonames (see share.h): a placeholder object per soname, made in
 * memory, whose every symbol is an absolute alias of the program's copy.
 *
 * Layout: one read-only segment (ELF header, program headers, .dynsym,
 * .gnu.version, .gnu.version_d, GNU hash, .dynstr) and one read+write page
 * holding the dynamic section. No code, no relocations, no DT_NEEDED.
 *
 * Symbols are SHN_ABS: glibc (since 2.28) does not add the object's load
 * base to them, so st_value is the run-time address in the program's copy,
 * for functions and data alike. IFUNCs are resolved once (STT_FUNC in the
 * placeholder); TLS symbols are left out (a TLS offset cannot be aliased).
 * The version definitions are copied: glibc asserts when a reference
 * versioned against an object's soname meets that object without them. */
#define _GNU_SOURCE
#include "share.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "debug.h"
#include "dynobj.h"

#define N_DYN 12 /* capsule_image_dynamic's six, three for versions, DT_NULLs */

typedef struct {
    const char *name;
    ElfW(Addr) value;
    unsigned char info;
    ElfW(Xword) size;
    ElfW(Half) version; /* index in the placeholder's verdef, | 0x8000 when hidden */
    uint32_t hash;
} alias;

typedef struct {
    alias *syms;
    size_t n, cap;
    const char **versions; /* index 2.. : the placeholder's version nodes */
    size_t n_versions, cap_versions;
} table;

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

/* Where references to a data symbol bind: the program's copy of it when the
 * executable has one (a COPY relocation), else the library's definition. */
static ElfW(Addr)
data_address(const capsule_dynobj *exe, const char *name, const char *version, int hidden,
             ElfW(Addr) own)
{
    if (!exe || hidden)
        return own;
    long i = capsule_dynobj_lookup(exe, name, version);
    if (i < 0)
        i = version ? capsule_dynobj_lookup(exe, name, NULL) : -1;
    return i < 0 ? own : (ElfW(Addr))capsule_dynobj_address(exe, i);
}

static int
collect(const capsule_dynobj *o, const capsule_dynobj *exe, table *t)
{
    for (size_t i = 1; i < o->n_symbols; i++) {
        const ElfW(Sym) *s = &o->symtab[i];
        unsigned type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);

        if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS || bind == STB_LOCAL ||
            type == STT_TLS || type == STT_SECTION || type == STT_FILE ||
            s->st_name >= o->strsz)
            continue;
        alias a = { .name = o->strtab + s->st_name, .size = s->st_size, .version = 1 };
        a.value = (ElfW(Addr))capsule_dynobj_address(o, (long)i);
        a.info = ELF64_ST_INFO(bind, type == STT_GNU_IFUNC ? STT_FUNC : type);
        const char *vname = NULL;
        if (o->versym) {
            ElfW(Half) v = o->versym[i];
            vname = (v & 0x7fff) >= 2 ? capsule_dynobj_symbol_version(o, i) : NULL;
            if (vname) {
                if (version_index(t, vname, &a.version) != 0)
                    return -1;
                a.version |= v & 0x8000;
            }
        }
        if (type == STT_OBJECT || type == STT_COMMON)
            a.value = data_address(exe, a.name, vname, a.version & 0x8000, a.value);
        a.hash = capsule_gnu_hash(a.name);
        if (capsule_grow((void **)&t->syms, &t->cap, t->n, sizeof *t->syms) != 0)
            return -1;
        t->syms[t->n++] = a;
    }
    return 0;
}

typedef struct {
    size_t sym, versym, verdef, hash, str, text_end, dyn, total, strsz;
    size_t nbuckets, bloom_words;
} layout;

static layout
plan(const table *t, const char *soname)
{
    layout l;
    size_t strsz = 1 + strlen(soname) + 1, n = t->n;

    for (size_t i = 0; i < n; i++)
        strsz += strlen(t->syms[i].name) + 1;
    for (size_t i = 0; i < t->n_versions; i++)
        strsz += strlen(t->versions[i]) + 1;
    l.strsz = strsz;
    l.nbuckets = n ? n / 2 + 1 : 1;
    l.bloom_words = 1;
    while (l.bloom_words * 64 < n && l.bloom_words < 4096)
        l.bloom_words *= 2;
    l.sym = align_up(sizeof(ElfW(Ehdr)) + CAPSULE_IMAGE_PHDRS * sizeof(ElfW(Phdr)), 8);
    l.versym = l.sym + (n + 1) * sizeof(ElfW(Sym));
    l.verdef = align_up(l.versym + (n + 1) * sizeof(ElfW(Half)), 8);
    l.hash = l.verdef + (t->n_versions + 1) * (sizeof(ElfW(Verdef)) + sizeof(ElfW(Verdaux)));
    l.hash = align_up(l.hash, 8);
    l.str = l.hash + 16 + l.bloom_words * 8 + (l.nbuckets + n) * 4;
    l.text_end = l.str + strsz;
    l.dyn = align_up(l.text_end, CAPSULE_IMAGE_PAGE);
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

static int
by_bucket(const void *a, const void *b, void *data)
{
    uint32_t nb = *(const uint32_t *)data;
    uint32_t x = ((const alias *)a)->hash % nb, y = ((const alias *)b)->hash % nb;
    return x < y ? -1 : x > y;
}

static uint32_t
alias_hash(const void *ctx, size_t k)
{
    return ((const table *)ctx)->syms[k].hash;
}

static void
write_symbols(unsigned char *img, const layout *l, table *t, size_t *str)
{
    ElfW(Sym) *sym = (ElfW(Sym) *)(img + l->sym);
    ElfW(Half) *versym = (ElfW(Half) *)(img + l->versym);
    uint32_t nb = (uint32_t)l->nbuckets;

    qsort_r(t->syms, t->n, sizeof *t->syms, by_bucket, &nb);
    for (size_t k = 0; k < t->n; k++) {
        const alias *a = &t->syms[k];
        ElfW(Sym) *y = &sym[k + 1];

        y->st_name = (uint32_t)put_string(img, l, str, a->name);
        y->st_info = a->info;
        y->st_shndx = SHN_ABS;
        y->st_value = a->value;
        y->st_size = a->size;
        versym[k + 1] = a->version;
    }
    capsule_image_gnu_hash((uint32_t *)(img + l->hash), t->n, nb, (uint32_t)l->bloom_words,
                           alias_hash, t);
}

static void
write_dynamic(unsigned char *img, const layout *l, size_t n_versions)
{
    ElfW(Dyn) *d = capsule_image_dynamic(img, l->dyn, l->hash, l->str, l->sym, l->strsz);

    *d++ = (ElfW(Dyn)){ .d_tag = DT_VERSYM, .d_un.d_ptr = l->versym };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_VERDEF, .d_un.d_ptr = l->verdef };
    *d = (ElfW(Dyn)){ .d_tag = DT_VERDEFNUM, .d_un.d_val = n_versions + 1 };
}

static void *
load_placeholder(Lmid_t lmid, const char *soname, table *t)
{
    layout l = plan(t, soname);
    unsigned char *img = calloc(1, l.total);
    size_t str = 1;

    if (!img) {
        capsule_error_set("out of memory");
        return NULL;
    }
    capsule_image_headers(img, l.text_end, l.dyn, l.total, PF_R);
    put_string(img, &l, &str, soname);
    write_verdef(img, &l, t, soname, &str);
    write_symbols(img, &l, t, &str);
    write_dynamic(img, &l, t->n_versions);
    void *h = capsule_image_load(img, l.total, lmid);
    free(img);
    return h;
}

/* Every placeholder loaded, for the namespace map: only ever prepended to,
 * published with release semantics, never freed. */
typedef struct placed {
    const struct link_map *map;
    char *soname;
    struct placed *next;
} placed;

static placed *placeholders;

static void
remember(void *handle, const char *soname)
{
    struct link_map *map = NULL;
    placed *p = calloc(1, sizeof *p);

    if (!p || dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map || !(p->soname = strdup(soname))) {
        free(p);
        return; /* only the map's label is lost */
    }
    p->map = map;
    p->next = placeholders;
    __atomic_store_n(&placeholders, p, __ATOMIC_RELEASE);
}

const char *
capsule_share_placeholder(const struct link_map *map)
{
    for (placed *p = __atomic_load_n(&placeholders, __ATOMIC_ACQUIRE); p; p = p->next) {
        if (p->map == map)
            return p->soname;
    }
    return NULL;
}

/* The program's copy: already loaded, or loaded now into the default namespace. */
static void *
program_copy(const char *soname)
{
    void *h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);

    if (h) {
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: the program's copy is loaded", soname);
        return h;
    }
    h = dlopen(soname, RTLD_LAZY);
    if (h)
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: loaded the program's copy", soname);
    else
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: the program has no copy (%s): the capsule "
                      "takes its own from the prefix", soname, dlerror());
    return h;
}

int
capsule_share_load(Lmid_t lmid, const char *soname)
{
    void *prior = dlmopen(lmid, soname, RTLD_LAZY | RTLD_NOLOAD);
    if (prior) {
        dlclose(prior);
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: namespace %ld already has a copy: not "
                      "shared", soname, (long)lmid);
        return 1;
    }
    void *prog = program_copy(soname);
    struct link_map *map = NULL;
    if (!prog)
        return 1;
    if (dlinfo(prog, RTLD_DI_LINKMAP, &map) != 0 || !map)
        return capsule_error_set("share %s: dlinfo: %s", soname, dlerror());

    capsule_dynobj o, exe;
    table t = { 0 };
    int rc = capsule_dynobj_from_link_map(&o, map);
    if (rc != 0)
        return rc;
    struct link_map *head = NULL;
    void *self = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
    int have_exe = self && dlinfo(self, RTLD_DI_LINKMAP, &head) == 0 && head &&
                   capsule_dynobj_from_link_map(&exe, head) == 0;
    rc = collect(&o, have_exe ? &exe : NULL, &t);
    if (have_exe)
        capsule_dynobj_fini(&exe);
    void *h = rc == 0 ? load_placeholder(lmid, soname, &t) : NULL;
    if (rc == 0 && !h)
        rc = capsule_error_set("share %s: loading the placeholder: %s", soname, capsule_error());
    if (h) {
        remember(h, soname);
        capsule_debug(CAPSULE_DEBUG_NS, "share %s: namespace %ld uses %s (%zu symbols)", soname,
                      (long)lmid, map->l_name, t.n);
    }
    capsule_dynobj_fini(&o);
    free(t.syms);
    free(t.versions);
    return rc;
}
