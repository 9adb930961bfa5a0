#define _GNU_SOURCE
#include "dynobj.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "debug.h"

/* ld.so rewrites most d_ptr values to run-time addresses in place; the
 * vDSO's (read-only) dynamic section keeps link-time ones. */
static const void *
dyn_pointer(const capsule_dynobj *o, ElfW(Addr) value)
{
    return (const void *)(value < o->base ? value + o->base : value);
}

static size_t
gnu_hash_count(const uint32_t *gh)
{
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2];
    const uint32_t *buckets = gh + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;

    for (uint32_t i = 0; i < nbuckets; i++) {
        if (buckets[i] > last)
            last = buckets[i];
    }
    if (last < symoffset)
        return symoffset;
    while (!(chain[last - symoffset] & 1))
        last++;
    return (size_t)last + 1;
}

static void
decode_phdrs(capsule_dynobj *o)
{
    ElfW(Addr) page = (ElfW(Addr))getauxval(AT_PAGESZ);

    o->map_start = ~(ElfW(Addr))0;
    for (size_t i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *p = &o->phdr[i];
        if (p->p_type == PT_LOAD) {
            if (o->base + p->p_vaddr < o->map_start)
                o->map_start = o->base + p->p_vaddr;
            if (o->base + p->p_vaddr + p->p_memsz > o->map_end)
                o->map_end = o->base + p->p_vaddr + p->p_memsz;
        } else if (p->p_type == PT_GNU_RELRO) {
            /* The same rounding as ld.so: a partial last page stays writable. */
            o->relro_start = (o->base + p->p_vaddr) & ~(page - 1);
            o->relro_end = (o->base + p->p_vaddr + p->p_memsz) & ~(page - 1);
        }
    }
    if (o->map_start > o->map_end)
        o->map_start = o->map_end = 0;
}

/* Calls fn for every version index defined (verdef) or needed (verneed). */
typedef void (*version_fn)(capsule_dynobj *o, unsigned index, unsigned name, int base);

static void
each_version(capsule_dynobj *o, const ElfW(Verdef) *verdef, size_t n_verdef,
             const ElfW(Verneed) *verneed, size_t n_verneed, version_fn fn)
{
    for (size_t i = 0; verdef && i < n_verdef; i++) {
        const ElfW(Verdaux) *aux = (const void *)((const char *)verdef + verdef->vd_aux);
        fn(o, verdef->vd_ndx, aux->vda_name, verdef->vd_flags & VER_FLG_BASE);
        if (!verdef->vd_next)
            break;
        verdef = (const void *)((const char *)verdef + verdef->vd_next);
    }
    for (size_t i = 0; verneed && i < n_verneed; i++) {
        const ElfW(Vernaux) *aux = (const void *)((const char *)verneed + verneed->vn_aux);
        for (size_t j = 0; j < verneed->vn_cnt; j++) {
            fn(o, aux->vna_other, aux->vna_name, 0);
            if (!aux->vna_next)
                break;
            aux = (const void *)((const char *)aux + aux->vna_next);
        }
        if (!verneed->vn_next)
            break;
        verneed = (const void *)((const char *)verneed + verneed->vn_next);
    }
}

static void
count_version(capsule_dynobj *o, unsigned index, unsigned name, int base)
{
    (void)name;
    (void)base;
    index &= 0x7fff;
    if (index + 1 > o->n_versions)
        o->n_versions = index + 1;
}

static void
note_version(capsule_dynobj *o, unsigned index, unsigned name, int base)
{
    index &= 0x7fff;
    if (!base && index >= 1 && index < o->n_versions && name < o->strsz)
        o->version_names[index] = o->strtab + name;
}

/* Version names by index, sized by the highest index the object uses. */
static int
decode_versions(capsule_dynobj *o, const ElfW(Verdef) *verdef, size_t n_verdef,
                const ElfW(Verneed) *verneed, size_t n_verneed)
{
    if (!verdef && !verneed)
        return 0;
    each_version(o, verdef, n_verdef, verneed, n_verneed, count_version);
    o->version_names = calloc(o->n_versions ? o->n_versions : 1, sizeof *o->version_names);
    if (!o->version_names)
        return capsule_error_set("out of memory");
    each_version(o, verdef, n_verdef, verneed, n_verneed, note_version);
    return 0;
}

static size_t
max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* One more than the highest symbol index a relocation table refers to. */
static size_t
relocated_symbols(const capsule_rel *table, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; table && i < n; i++)
        count = max_size(count, (size_t)CAPSULE_REL_SYM(table[i].r_info) + 1);
    return count;
}

/* The dynamic entries that are only needed while decoding. */
typedef struct {
    const ElfW(Verdef) *verdef;
    const ElfW(Verneed) *verneed;
    size_t n_verdef, n_verneed, relsz, pltrelsz;
    ElfW(Addr) syment, relent, plt;
    ElfW(Sxword) pltrel;
} dynamic_sizes;

static void
read_dynamic(capsule_dynobj *o, dynamic_sizes *z)
{
    *z = (dynamic_sizes){ .syment = sizeof(ElfW(Sym)), .relent = sizeof(capsule_rel),
                          .pltrel = CAPSULE_DT_REL };
    for (const ElfW(Dyn) *d = o->dynamic; d && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: o->symtab = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_STRTAB: o->strtab = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_STRSZ: o->strsz = d->d_un.d_val; break;
        case DT_SYMENT: z->syment = d->d_un.d_val; break;
        case DT_GNU_HASH: o->gnu_hash = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_HASH: o->sysv_hash = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_VERSYM: o->versym = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_VERDEF: z->verdef = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_VERDEFNUM: z->n_verdef = d->d_un.d_val; break;
        case DT_VERNEED: z->verneed = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_VERNEEDNUM: z->n_verneed = d->d_un.d_val; break;
        case CAPSULE_DT_REL: o->rel = dyn_pointer(o, d->d_un.d_ptr); break;
        case CAPSULE_DT_RELSZ: z->relsz = d->d_un.d_val; break;
        case CAPSULE_DT_RELENT: z->relent = d->d_un.d_val; break;
        case DT_JMPREL: o->jmprel = dyn_pointer(o, d->d_un.d_ptr); break;
        case DT_PLTRELSZ: z->pltrelsz = d->d_un.d_val; break;
        case DT_PLTREL: z->pltrel = (ElfW(Sxword))d->d_un.d_val; break;
#ifdef CAPSULE_DT_PLT
        case CAPSULE_DT_PLT: z->plt = d->d_un.d_ptr; break;
        case CAPSULE_DT_PLTSZ: o->plt_size = d->d_un.d_val; break;
        case CAPSULE_DT_PLTENT: o->plt_entsize = d->d_un.d_val; break;
#endif
        default: break;
        }
    }
}

/* How many .dynsym entries may be read: what the hash table covers, and
 * (for_relocations) at least every index a relocation uses. */
static void
count_symbols(capsule_dynobj *o, int for_relocations)
{
    if (o->gnu_hash && o->gnu_hash[0] && o->gnu_hash[2] &&
        !(o->gnu_hash[2] & (o->gnu_hash[2] - 1)))
        o->n_symbols = gnu_hash_count(o->gnu_hash);
    else if (o->sysv_hash)
        o->gnu_hash = NULL, o->n_symbols = o->sysv_hash[1];
    else
        o->gnu_hash = NULL;
    if (!for_relocations)
        return; /* a lookup by name reaches only what the hash table covers */
    /* A GNU hash covers only the defined symbols at the end of .dynsym: in an
     * executable that exports nothing it may claim a single symbol, while its
     * relocations use many more. Those indexes are what ld.so itself reads. */
    o->n_symbols = max_size(o->n_symbols, relocated_symbols(o->rel, o->n_rel));
    o->n_symbols = max_size(o->n_symbols, relocated_symbols(o->jmprel, o->n_jmprel));
}

/* A -z mark-plt PLT, kept only as ld.so would use it: entries of at least
 * 16 bytes, a whole number of them, inside the object (ld.so does not
 * relocate this tag in place: it is always relative to the base). */
static void
decode_plt(capsule_dynobj *o, ElfW(Addr) plt)
{
    ElfW(Addr) start = o->base + plt;

    if (!plt || !o->n_jmprel || o->plt_entsize < 16 || o->plt_size < o->plt_entsize ||
        o->plt_size % o->plt_entsize || start + o->plt_size < start ||
        !capsule_dynobj_contains(o, start) || !capsule_dynobj_contains(o, start + o->plt_size - 1))
        o->plt_size = o->plt_entsize = 0;
    else
        o->plt_start = start;
}

static int
decode(capsule_dynobj *o, const char *name, ElfW(Addr) base, const ElfW(Dyn) *dynamic,
       const ElfW(Phdr) *phdr, size_t phnum, int for_relocations)
{
    dynamic_sizes z;

    memset(o, 0, sizeof *o);
    o->name = name && name[0] ? name : "(main program)";
    o->base = base;
    o->dynamic = dynamic;
    o->phdr = phdr;
    o->phnum = phnum;
    if (phdr)
        decode_phdrs(o);
    read_dynamic(o, &z);
    if (z.syment != sizeof(ElfW(Sym)) || z.relent != sizeof(capsule_rel) ||
        z.pltrel != CAPSULE_DT_REL)
        return capsule_error_set("%s: unexpected dynamic entry sizes", o->name);
    if (!o->symtab || !o->strtab)
        return 0; /* nothing to look up or relocate */
    o->n_rel = o->rel ? z.relsz / sizeof(capsule_rel) : 0;
    o->n_jmprel = o->jmprel ? z.pltrelsz / sizeof(capsule_rel) : 0;
    decode_plt(o, z.plt);
    count_symbols(o, for_relocations);
    o->verdef = z.verdef;
    o->n_verdef = z.n_verdef;
    return decode_versions(o, z.verdef, z.n_verdef, z.verneed, z.n_verneed);
}

int
capsule_dynobj_init(capsule_dynobj *o, const char *name, ElfW(Addr) base,
                    const ElfW(Dyn) *dynamic, const ElfW(Phdr) *phdr, size_t phnum)
{
    return decode(o, name, base, dynamic, phdr, phnum, 1);
}

int
capsule_dynobj_init_lookup(capsule_dynobj *o, const char *name, ElfW(Addr) base,
                           const ElfW(Dyn) *dynamic, const ElfW(Phdr) *phdr, size_t phnum)
{
    return decode(o, name, base, dynamic, phdr, phnum, 0);
}

/* ld.so relocates the dynamic section's pointers in place on this
 * architecture; the check against the base keeps an unrelocated one working. */
const char *
capsule_dyn_string(const ElfW(Dyn) *dynamic, ElfW(Addr) base, ElfW(Sxword) tag)
{
    const char *strtab = NULL;
    size_t strsz = 0, off = 0;
    int have = 0;

    for (const ElfW(Dyn) *d = dynamic; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB)
            strtab = (const char *)(d->d_un.d_ptr < base ? d->d_un.d_ptr + base : d->d_un.d_ptr);
        else if (d->d_tag == DT_STRSZ)
            strsz = d->d_un.d_val;
        else if (d->d_tag == tag)
            off = d->d_un.d_val, have = 1;
    }
    if (!have || !strtab || off >= strsz || !memchr(strtab + off, '\0', strsz - off))
        return NULL;
    return strtab + off;
}

const ElfW(Dyn) *
capsule_phdr_dynamic(const struct dl_phdr_info *info)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            return (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
    return NULL;
}

typedef struct {
    const ElfW(Dyn) *dynamic;
    const ElfW(Phdr) *phdr;
    size_t phnum;
} phdr_query;

static int
find_phdrs(struct dl_phdr_info *info, size_t size, void *data)
{
    phdr_query *q = data;

    (void)size;
    if (capsule_phdr_dynamic(info) != q->dynamic)
        return 0;
    q->phdr = info->dlpi_phdr;
    q->phnum = info->dlpi_phnum;
    return 1;
}

int
capsule_dynobj_from_link_map(capsule_dynobj *o, const struct link_map *map)
{
    phdr_query q = { map->l_ld, NULL, 0 };

    dl_iterate_phdr(find_phdrs, &q);
    return capsule_dynobj_init(o, map->l_name, map->l_addr, map->l_ld, q.phdr, q.phnum);
}

void
capsule_dynobj_fini(capsule_dynobj *o)
{
    free(o->version_names);
    memset(o, 0, sizeof *o);
}

const char *
capsule_dynobj_symbol_version(const capsule_dynobj *o, size_t index)
{
    if (!o->versym || !o->version_names || index >= o->n_symbols)
        return NULL;
    unsigned v = o->versym[index] & 0x7fff;
    return v >= 2 && v < o->n_versions ? o->version_names[v] : NULL;
}

static int
symbol_matches(const capsule_dynobj *o, size_t index, const char *name, const char *version)
{
    const ElfW(Sym) *s = &o->symtab[index];
    unsigned type = ELFW(ST_TYPE)(s->st_info);

    if (s->st_shndx == SHN_UNDEF || s->st_name >= o->strsz ||
        strcmp(o->strtab + s->st_name, name) != 0)
        return 0;
    if (type != STT_FUNC && type != STT_OBJECT && type != STT_NOTYPE && type != STT_GNU_IFUNC &&
        type != STT_COMMON && type != STT_TLS)
        return 0;
    if (ELFW(ST_BIND)(s->st_info) == STB_LOCAL)
        return 0;
    if (!o->versym)
        return 1;
    ElfW(Versym) vs = o->versym[index];
    unsigned v = vs & 0x7fff;
    if (!version)
        return !(vs & 0x8000) || v == 1; /* default or unversioned */
    if (v < 2)
        return 1; /* an unversioned definition satisfies any version */
    const char *have = v < o->n_versions ? o->version_names[v] : NULL;
    return have && strcmp(have, version) == 0;
}

uint32_t
capsule_gnu_hash(const char *name)
{
    uint32_t h = 5381;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = h * 33 + *p;
    return h;
}

static uint32_t
sysv_hash(const char *name)
{
    uint32_t h = 0, g;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h << 4) + *p;
        g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

static long
lookup_gnu(const capsule_dynobj *o, const char *name, uint32_t h, const char *version)
{
    const uint32_t *gh = o->gnu_hash;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2], shift = gh[3];
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)(gh + 4);
    const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
    const uint32_t *chain = buckets + nbuckets;
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word = bloom[(h / bits) & (bloom_size - 1)];
    ElfW(Addr) mask = ((ElfW(Addr))1 << (h % bits)) | ((ElfW(Addr))1 << ((h >> shift) % bits));

    if ((word & mask) != mask)
        return -1;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return -1;
    for (;; i++) {
        uint32_t ch = chain[i - symoffset];
        if ((ch | 1) == (h | 1) && symbol_matches(o, i, name, version))
            return i;
        if (ch & 1)
            return -1;
    }
}

static long
lookup_sysv(const capsule_dynobj *o, const char *name, const char *version)
{
    const uint32_t *hash = o->sysv_hash;
    uint32_t nbucket = hash[0], nchain = hash[1];
    const uint32_t *bucket = hash + 2, *chain = bucket + nbucket;

    if (!nbucket)
        return -1;
    for (uint32_t i = bucket[sysv_hash(name) % nbucket], n = 0; i && i < nchain && n < nchain;
         i = chain[i], n++) {
        if (symbol_matches(o, i, name, version))
            return i;
    }
    return -1;
}

long
capsule_dynobj_lookup(const capsule_dynobj *o, const char *name, const char *version)
{
    return capsule_dynobj_lookup_hashed(o, name, capsule_gnu_hash(name), version);
}

long
capsule_dynobj_lookup_hashed(const capsule_dynobj *o, const char *name, uint32_t gnu_hash,
                             const char *version)
{
    if (!o->symtab || !o->strtab)
        return -1;
    if (o->gnu_hash)
        return lookup_gnu(o, name, gnu_hash, version);
    if (o->sysv_hash)
        return lookup_sysv(o, name, version);
    return -1;
}

void *
capsule_dynobj_address(const capsule_dynobj *o, long index)
{
    const ElfW(Sym) *s = &o->symtab[index];
    ElfW(Addr) addr = (s->st_shndx == SHN_ABS ? 0 : o->base) + s->st_value;

    if (ELFW(ST_TYPE)(s->st_info) == STT_GNU_IFUNC)
        return ((void *(*)(void))addr)();
    return (void *)addr;
}

int
capsule_dynobj_contains(const capsule_dynobj *o, ElfW(Addr) addr)
{
    return addr >= o->map_start && addr < o->map_end;
}

int
capsule_dyn_defines_version(const ElfW(Dyn) *dynamic, ElfW(Addr) base, const char *version)
{
    capsule_dynobj o = { .base = base };
    dynamic_sizes z;

    o.dynamic = dynamic;
    read_dynamic(&o, &z);
    o.verdef = z.verdef;
    o.n_verdef = z.n_verdef;
    return o.strtab && capsule_dynobj_defines_version(&o, version);
}

int
capsule_dynobj_defines_version(const capsule_dynobj *o, const char *version)
{
    const ElfW(Verdef) *vd = o->verdef;

    for (size_t i = 0; vd && i < o->n_verdef; i++) {
        const ElfW(Verdaux) *aux = (const void *)((const char *)vd + vd->vd_aux);
        if (aux->vda_name < o->strsz && strcmp(o->strtab + aux->vda_name, version) == 0)
            return 1;
        if (!vd->vd_next)
            break;
        vd = (const void *)((const char *)vd + vd->vd_next);
    }
    return 0;
}

unsigned
capsule_dynobj_segment_flags(const capsule_dynobj *o, ElfW(Addr) addr)
{
    for (size_t i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *p = &o->phdr[i];
        if (p->p_type == PT_LOAD && addr >= o->base + p->p_vaddr &&
            addr < o->base + p->p_vaddr + p->p_memsz)
            return p->p_flags;
    }
    return 0;
}
