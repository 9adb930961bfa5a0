/* capsule_shim_init: what a shim's constructor calls, and the one place that
 * turns a failure into the user's `capsule:` line. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boundary.h"
#include "capsule.h"
#include "datacopy.h"
#include "debug.h"
#include "dynobj.h"
#include "forklock.h"
#include "namespace.h"
#include "nsmap.h"
#include "objects.h"
#include "reloc.h"
#include "resolve.h"
#include "serial.h"
#include "shims.h"
#include "static.h"
#include "wrappers.h"

/* A data or TLS symbol of the shim by its symbol value: the offset of its
 * variable from the shim's base, or in the shim's TLS block. Functions need
 * no table: their stubs sit at a fixed stride (capsule_shim.stubs). */
struct by_value {
    ElfW(Addr) value;
    size_t index;     /* shim symbol index, or (size_t)-1 when two share it */
};

/* An initialised shim. */
typedef struct shim_state {
    capsule_shim *shim;
    const char *prefix;
    capsule_ns *ns;
    capsule_dynobj self;
    ElfW(Addr) stubs;           /* stub 0 */
    struct by_value *data;      /* data symbols, sorted by value */
    size_t n_data;
    struct by_value *tls;       /* TLS symbols, sorted by value */
    size_t n_tls;
    capsule_object **providers; /* the target, then the `exports` objects */
    size_t n_providers;
    capsule_policy policy;
    uint64_t starts[64];        /* name_start() of every name the shim defines */
    struct shim_state *next;
} shim_state;

/* A name's first two bytes, as a bit of shim_state.starts: most slots of
 * most objects name no shim symbol, and are passed over without hashing
 * their names (vk..., gl... against malloc, strlen, _ZNSt...). */
static unsigned
name_start(const char *name)
{
    unsigned a = (unsigned char)name[0], b = a ? (unsigned char)name[1] : 0;
    return (a * 67 + b) & 4095;
}

/* Prepended to under init_lock, published with release semantics; shims
 * are made NODELETE, so a shim_state stays valid for good. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&init_lock, CAPSULE_LOCK_INIT);
}
static shim_state *shims;

/* A shim symbol's name, and its version or NULL when unversioned. */
static const char *
symbol_name(const capsule_shim *shim, const capsule_symbol *sym)
{
    return shim->strings + sym->name;
}

static const char *
symbol_version(const capsule_shim *shim, const capsule_symbol *sym)
{
    return sym->version ? shim->strings + sym->version : NULL;
}

void
capsule_shim_line(char *line, size_t size, const capsule_shim *shim, const char *prefix,
                  const char *cause)
{
    int n;

    /* A prefix from the environment can be any length: keep the cause. */
    if (prefix)
        n = snprintf(line, size, "capsule: %s: prefix %.512s%s: %s\n", shim->soname, prefix,
                     strlen(prefix) > 512 ? "..." : "", cause);
    else
        n = snprintf(line, size, "capsule: %s: %s\n", shim->soname, cause);
    if (n < 0 || (size_t)n >= size)
        strcpy(line + size - 2, "\n");
    capsule_one_line(line);
}

static __attribute__((noreturn)) void
fail(const capsule_shim *shim, const char *prefix, const char *cause)
{
    char line[2048];

    capsule_shim_line(line, sizeof line, shim, prefix, cause);
    if (write(STDERR_FILENO, line, strlen(line)) < 0)
        _exit(127);
#ifdef CAPSULE_COVERAGE
    /* _exit skips the atexit handler that writes gcov's counters. */
    extern void __gcov_dump(void);
    __gcov_dump();
#endif
    _exit(127);
}

const char *
capsule_shim_prefix(const capsule_shim *shim)
{
    char name[256] = "CAPSULE_";
    size_t o = strlen(name);
    const char *value;

    for (const char *p = shim->soname; *p && o < sizeof name - 8; p++)
        name[o++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    strcpy(name + o, "_PREFIX");
    value = secure_getenv(name);
    if (value && value[0]) {
        capsule_debug(CAPSULE_DEBUG_PATH, "%s: prefix %s from %s", shim->soname, value, name);
        return value;
    }
    value = secure_getenv("CAPSULE_PREFIX");
    if (value && value[0]) {
        capsule_debug(CAPSULE_DEBUG_PATH, "%s: prefix %s from CAPSULE_PREFIX", shim->soname,
                      value);
        return value;
    }
    return shim->prefix;
}

char *
capsule_shim_canonical_prefix(const char *prefix)
{
    struct stat st;
    char *real;

    if (!prefix || !prefix[0])
        return capsule_error_set("no prefix given"), NULL;
    if (prefix[0] != '/')
        return capsule_error_set("the prefix must be an absolute path"), NULL;
    if (stat(prefix, &st) != 0)
        return capsule_error_set("%s", errno == ENOENT ? "prefix does not exist"
                                                       : strerror(errno)), NULL;
    if (!S_ISDIR(st.st_mode))
        return capsule_error_set("prefix is not a directory"), NULL;
    if (!(real = realpath(prefix, NULL)))
        return capsule_error_set("cannot resolve the prefix: %s", strerror(errno)), NULL;
    return real;
}

static int
load_providers(shim_state *s, const capsule_depset *set)
{
    const capsule_shim *shim = s->shim;
    size_t n = 1;

    while (shim->exports && shim->exports[n - 1])
        n++;
    if (!(s->providers = calloc(n, sizeof *s->providers)))
        return capsule_error_set("out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *soname = i == 0 ? shim->soname : shim->exports[i - 1];
        size_t d = capsule_depset_find(set, soname);
        capsule_object *o = d == CAPSULE_NO_PARENT ? NULL
                            : capsule_objects_by_path(capsule_ns_lmid(s->ns), set->deps[d].path);
        if (!o)
            return capsule_error_set("%s: not loaded in the capsule", soname);
        s->providers[i] = o;
        s->n_providers = i + 1;
    }
    return 0;
}

static int
by_value_order(const void *a, const void *b)
{
    ElfW(Addr) x = ((const struct by_value *)a)->value;
    ElfW(Addr) y = ((const struct by_value *)b)->value;
    return (x > y) - (x < y);
}

static size_t
find_value(const struct by_value *table, size_t n, ElfW(Addr) value)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table[mid].value == value)
            return table[mid].index;
        if (table[mid].value < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (size_t)-1;
}

/* The function symbol whose stub starts at addr, or (size_t)-1. */
static size_t
stub_index(const shim_state *s, ElfW(Addr) addr)
{
    ElfW(Addr) off = addr - s->stubs;

    if (addr < s->stubs || off % CAPSULE_STUB_STRIDE != 0 ||
        off / CAPSULE_STUB_STRIDE >= s->shim->n_symbols)
        return (size_t)-1;
    size_t i = off / CAPSULE_STUB_STRIDE;
    return s->shim->symbols[i].kind == CAPSULE_SYMBOL_FUNC ? i : (size_t)-1;
}

/* The shim symbol whose stub or variable starts at addr, or (size_t)-1.
 * A resolved slot pointing into the shim is bound to exactly that symbol
 * (name and version as ld.so chose them): no name lookup needed. */
static size_t
index_at(const shim_state *s, ElfW(Addr) addr)
{
    size_t i = stub_index(s, addr);

    return i != (size_t)-1 ? i : find_value(s->data, s->n_data, addr - s->self.base);
}

/* The sorted table of the data (or TLS) symbols' values: few in any
 * library, so looked up by name once each. */
static int
index_kind(shim_state *s, unsigned char kind, struct by_value **table, size_t *count)
{
    size_t n = 0, out = 0;

    for (size_t i = 0; i < s->shim->n_symbols; i++)
        n += s->shim->symbols[i].kind == kind;
    if (!n)
        return 0;
    if (!(*table = calloc(n, sizeof **table)))
        return capsule_error_set("out of memory");
    for (size_t i = 0; i < s->shim->n_symbols; i++) {
        const capsule_symbol *sym = &s->shim->symbols[i];
        if (sym->kind != kind)
            continue;
        long idx = capsule_dynobj_lookup(&s->self, symbol_name(s->shim, sym),
                                         symbol_version(s->shim, sym));
        if (idx < 0 || s->self.symtab[idx].st_shndx == SHN_ABS) {
            capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s not exported by the shim itself",
                          s->shim->soname, symbol_name(s->shim, sym));
            continue;
        }
        (*table)[out++] = (struct by_value){ s->self.symtab[idx].st_value, i };
        if (kind == CAPSULE_SYMBOL_TLS)
            capsule_debug(CAPSULE_DEBUG_RELOC, "%s: TLS symbol %s%s%s not redirected",
                          s->shim->soname, symbol_name(s->shim, sym),
                          sym->version ? "@" : "",
                          sym->version ? symbol_version(s->shim, sym) : "");
    }
    qsort(*table, out, sizeof **table, by_value_order);
    /* Two symbols at one value (zero-sized variables) cannot be told apart
     * by address: such a value names no symbol. */
    n = 0;
    for (size_t i = 0; i < out; i++) {
        if (n && (*table)[n - 1].value == (*table)[i].value) {
            if ((*table)[n - 1].index != (*table)[i].index)
                (*table)[n - 1].index = (size_t)-1;
            continue;
        }
        (*table)[n++] = (*table)[i];
    }
    *count = n;
    return 0;
}

/* Checks that the stubs are where the description says, on the first and
 * last function (a shim built by another renderer would be misread). */
static int
check_stubs(const shim_state *s)
{
    size_t first = (size_t)-1, last = (size_t)-1;

    for (size_t i = 0; i < s->shim->n_symbols; i++) {
        if (s->shim->symbols[i].kind == CAPSULE_SYMBOL_FUNC) {
            if (first == (size_t)-1)
                first = i;
            last = i;
        }
    }
    for (size_t k = 0; k < 2 && first != (size_t)-1; k++) {
        size_t i = k ? last : first;
        const capsule_symbol *sym = &s->shim->symbols[i];
        long idx = capsule_dynobj_lookup(&s->self, symbol_name(s->shim, sym),
                                         symbol_version(s->shim, sym));
        if (idx >= 0 && s->self.base + s->self.symtab[idx].st_value !=
                            s->stubs + i * CAPSULE_STUB_STRIDE)
            return capsule_error_set("the shim's stubs are not where its description says "
                                     "(%s): rebuild the shim", symbol_name(s->shim, sym));
    }
    return 0;
}

static int
index_self(shim_state *s)
{
    struct link_map *map = NULL;
    Dl_info info;

    if (!dladdr1(s->shim->anchor, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
        return capsule_error_set("cannot find the shim's own link map");
    if (capsule_dynobj_from_link_map(&s->self, map) != 0)
        return -1;
    for (size_t i = 1; i < s->self.n_symbols; i++) {
        const ElfW(Sym) *sym = &s->self.symtab[i];
        if (sym->st_shndx != SHN_UNDEF && sym->st_name < s->self.strsz) {
            unsigned bit = name_start(s->self.strtab + sym->st_name);
            s->starts[bit / 64] |= (uint64_t)1 << (bit % 64);
        }
    }
    s->stubs = (ElfW(Addr))s->shim->stubs;
    if (s->shim->n_symbols && !capsule_dynobj_contains(&s->self, s->stubs))
        return capsule_error_set("invalid shim description (stubs)");
    if (check_stubs(s) != 0 || index_kind(s, CAPSULE_SYMBOL_DATA, &s->data, &s->n_data) != 0)
        return -1;
    return index_kind(s, CAPSULE_SYMBOL_TLS, &s->tls, &s->n_tls);
}

/* The real definition of shim symbol i, looked up (with its version) in
 * the target, then in the `exports` objects, when first asked for: a set-up
 * touches only the symbols the program's objects use (thousands in a
 * libGL shim, tens used). Found, it stays in targets[i]; storing it twice
 * from two threads stores the same value.
 *
 * TLS symbols are not redirected: a thread-local variable has no one
 * address (dlsym would give the calling thread's block only), and objects
 * reach it through DTPMOD/DTPOFF/TPOFF relocations, which name a module and
 * an offset, not an address this pass could rewrite. Their targets stay
 * NULL: users keep the shim's own (zeroed) variable, and the real library
 * its own. */
static void *
target_of(const shim_state *s, size_t i)
{
    void *addr = __atomic_load_n(&s->shim->targets[i], __ATOMIC_ACQUIRE);
    const capsule_symbol *sym = &s->shim->symbols[i];

    if (addr || sym->kind == CAPSULE_SYMBOL_TLS)
        return addr;
    const char *name = symbol_name(s->shim, sym), *version = symbol_version(s->shim, sym);
    for (size_t p = 0; p < s->n_providers && !addr; p++) {
        long idx = capsule_dynobj_lookup(&s->providers[p]->dyn, name, version);
        if (idx >= 0)
            addr = capsule_dynobj_address(&s->providers[p]->dyn, idx);
    }
    if (addr)
        __atomic_store_n(&s->shim->targets[i], addr, __ATOMIC_RELEASE);
    else
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s%s%s: not found in the capsule",
                      s->shim->soname, name, version ? "@" : "", version ? version : "");
    return addr;
}

/* The shim symbol `name` (version) is, or (size_t)-1. */
static size_t
shim_index(const shim_state *s, const char *name, const char *version)
{
    unsigned bit = name_start(name);
    if (!(s->starts[bit / 64] >> (bit % 64) & 1))
        return (size_t)-1;
    long idx = capsule_dynobj_lookup(&s->self, name, version);

    if (idx < 0 || (size_t)idx >= s->self.n_symbols)
        return (size_t)-1;
    const ElfW(Sym) *sym = &s->self.symtab[idx];
    if (ELFW(ST_TYPE)(sym->st_info) == STT_TLS)
        return find_value(s->tls, s->n_tls, sym->st_value);
    if (sym->st_shndx == SHN_ABS)
        return (size_t)-1;
    return index_at(s, s->self.base + sym->st_value);
}

typedef struct {
    const shim_state *shim;
    const capsule_slot *slot;
    int found;
} earlier_search;

/* Stops at the shim; before it, an object defining the slot's symbol. */
static int
defines_before_shim(struct dl_phdr_info *info, size_t size, void *data)
{
    earlier_search *q = data;
    const ElfW(Dyn) *dyn = capsule_phdr_dynamic(info);

    (void)size;
    if (info->dlpi_addr == q->shim->self.base || !dyn)
        return info->dlpi_addr == q->shim->self.base;
    capsule_object *o = capsule_objects_program(info, dyn, 0);
    if (o && capsule_dynobj_lookup(&o->dyn, q->slot->name, q->slot->version) >= 0) {
        q->found = 1;
        return 1;
    }
    return 0;
}

/* Would this lazy slot bind to the shim? ld.so binds it at the first call
 * to the first definition in the default scope (a lazy slot's lookup skips
 * a non-PIE program's undefined canonical PLT entries), or to the shim in
 * the object's own local scope when the default scope has none (a library
 * dlopen()ed RTLD_LOCAL with the shim). So the slot is the shim's unless
 * an object the default namespace lists before the shim defines the
 * symbol. Walked here, under the pass's lock, with no dlsym (which takes
 * ld.so's load lock: see reloc.c). An RTLD_LOCAL object listed before the
 * shim is not in that scope but counts as defining it: the slot is then
 * left to ld.so, which binds it at the first call, through the stub. */
static int
lazy_bound_to_shim(const shim_state *s, const capsule_slot *slot)
{
    earlier_search q = { s, slot, 0 };

    if (slot->symbol->st_shndx != SHN_UNDEF)
        return 0; /* the object's own definition */
    dl_iterate_phdr(defines_before_shim, &q);
    return !q.found;
}

/* Why a stale shim cannot stand in: `object` uses shim symbol i, which
 * the real library (built from another version than the shim) lacks. */
static const char *
missing_message(const shim_state *s, const char *object, size_t i, char *why, size_t size)
{
    const capsule_symbol *sym = &s->shim->symbols[i];
    const char *version = symbol_version(s->shim, sym);

    snprintf(why, size,
             "%.400s uses %s %s%s%s, which %s%s does not define in this prefix (the shim was "
             "built from another version of it)",
             object, sym->kind == CAPSULE_SYMBOL_DATA ? "variable" : "function",
             symbol_name(s->shim, sym), version ? "@" : "", version ? version : "",
             s->shim->soname,
             s->shim->exports && s->shim->exports[0] ? " (with its exports)" : "");
    return why;
}

/* A resolved slot bound to a symbol the shim exports and the real library
 * lacks (a shim built from another version of it). Without capsules ld.so
 * binds GLOB_DAT and 64 slots when it loads the object, also under lazy
 * binding: a weak reference gets 0, an object that defines the name itself
 * gets its own definition (next in its scope once the library lacks it),
 * and any other reference stops the program (or the dlopen) before it
 * runs: so does this, with one line. A call through a JUMP_SLOT keeps the
 * stub, which aborts naming the symbol if it is ever called, as lazy
 * binding fails at the call. TLS symbols are never redirected. */
static int
missing_target(const shim_state *s, const capsule_slot *slot, size_t i, ElfW(Addr) *value,
               ElfW(Addr) offset)
{
    const ElfW(Sym) *ref = slot->symbol;
    unsigned type = ELFW(ST_TYPE)(ref->st_info);

    if (slot->type == CAPSULE_R_JUMP_SLOT || s->shim->symbols[i].kind == CAPSULE_SYMBOL_TLS)
        return 0;
    if (ref->st_shndx != SHN_UNDEF && type != STT_GNU_IFUNC && type != STT_TLS) {
        *value = (ref->st_shndx == SHN_ABS ? 0 : slot->object->base) + ref->st_value + offset;
        return 1;
    }
    if (ELFW(ST_BIND)(ref->st_info) == STB_WEAK) {
        *value = offset;
        return 1;
    }
    char why[1024];
    fail(s->shim, s->prefix, missing_message(s, slot->object->name, i, why, sizeof why));
}

/* An addend_in_slot slot (i386's R_386_32) bound to the shim's own
 * definition of symbol i, its stub or its variable: then *offset is the
 * addend (&array[k] of an exported array). */
static int
bound_to_own(const shim_state *s, const capsule_slot *slot, size_t i, ElfW(Addr) *offset)
{
    const capsule_symbol *sym = &s->shim->symbols[i];

    if (sym->kind == CAPSULE_SYMBOL_FUNC)
        return capsule_slot_bound_to(slot, s->stubs + i * CAPSULE_STUB_STRIDE, 0, offset);
    if (sym->kind != CAPSULE_SYMBOL_DATA)
        return 0;
    long idx = capsule_dynobj_lookup(&s->self, symbol_name(s->shim, sym),
                                     symbol_version(s->shim, sym));
    if (idx < 0)
        return 0;
    ElfW(Addr) own = (ElfW(Addr))capsule_dynobj_address(&s->self, idx);
    return capsule_slot_bound_to(slot, own, sym->size, offset);
}

/* Per slot of every object: resolved slots are decided by their address
 * (most point elsewhere and cost one range check); only lazy ones need a
 * lookup by name. */
static int
shim_lookup(void *ctx, const capsule_slot *slot, ElfW(Addr) *value)
{
    shim_state *s = ctx;
    ElfW(Addr) offset = 0;
    size_t i;

    if (slot->addend_in_slot) {
        if (!capsule_dynobj_contains(&s->self, slot->current))
            return 0;
        i = shim_index(s, slot->name, slot->version);
        if (i == (size_t)-1 || !bound_to_own(s, slot, i, &offset))
            return 0;
    } else if (!slot->lazy) {
        if (!capsule_dynobj_contains(&s->self, slot->current))
            return 0;
        i = index_at(s, slot->current);
        if (i == (size_t)-1)
            i = shim_index(s, slot->name, slot->version);
    } else {
        i = shim_index(s, slot->name, slot->version);
        if (i != (size_t)-1 && !lazy_bound_to_shim(s, slot))
            return 0;
    }
    if (i == (size_t)-1)
        return 0;
    void *target = target_of(s, i);
    if (!target)
        return slot->lazy ? 0 : missing_target(s, slot, i, value, offset);
    *value = (ElfW(Addr))target + offset;
    return 1;
}

/* Exported variables the program holds a COPY of: the copy is the one
 * variable, so it is what every other slot should reach. */
static int
adopt_program_copies(shim_state *s)
{
    const capsule_copy_reloc *copies;
    size_t n = capsule_datacopy_program(&copies);

    for (size_t c = 0; c < n; c++) {
        size_t i = shim_index(s, copies[c].name, copies[c].version);
        if (i == (size_t)-1 || s->shim->symbols[i].kind != CAPSULE_SYMBOL_DATA)
            continue;
        if (!target_of(s, i)) {
            /* ld.so leaves a weak one as it is, and refuses the program
             * for any other: a stale shim's zeros are no value. */
            if (copies[c].weak)
                continue;
            char why[1024];
            return capsule_error_set("%s", missing_message(s, "(main program)", i, why,
                                                           sizeof why));
        }
        if (capsule_datacopy_add(s->ns, copies[c].name, s->shim->targets[i], &copies[c],
                                 s->shim->symbols[i].size) != 0)
            return -1;
        s->shim->targets[i] = (void *)copies[c].where;
    }
    capsule_datacopy_apply(s->ns);
    return capsule_datacopy_fill(s->ns);
}

/* A shim stays loaded once initialised: libcapsule keeps pointers into it,
 * and dlclose() + dlopen() of it must find the same capsule. */
static void
pin_self(const shim_state *s)
{
    Dl_info info;

    if (dladdr(s->shim->anchor, &info) && info.dli_fname) {
        void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
        if (h)
            dlclose(h);
    }
}

static int
redirect(shim_state *s)
{
    s->policy = (capsule_policy){ s->shim->soname, shim_lookup, s };
    if (capsule_wrap_install() != 0)
        return -1;
    for (size_t p = 0; p < s->n_providers; p++)
        capsule_ns_scope_add(s->ns, s->providers[p]->handle);
    return capsule_reloc_register(&s->policy, s->shim->anchor);
}

/* ---- queries for the dl* wrappers ---- */

static shim_state *
first_shim(void)
{
    return __atomic_load_n(&shims, __ATOMIC_ACQUIRE);
}

/* What a lookup of name (version) that landed on shim symbol i gives
 * without capsules: its real definition; when the real library lacks that
 * one (a stale shim), for an unversioned lookup its default definition
 * (the shim's default version may be newer than the library's), else
 * NULL. */
static void *
real_definition(const shim_state *s, size_t i, const char *name, const char *version)
{
    void *target = target_of(s, i);

    if (target || version)
        return target;
    for (size_t p = 0; p < s->n_providers; p++) {
        const capsule_dynobj *o = &s->providers[p]->dyn;
        long idx = capsule_dynobj_lookup(o, name, NULL);
        if (idx >= 0 && ELFW(ST_TYPE)(o->symtab[idx].st_info) != STT_TLS)
            return capsule_dynobj_address(o, idx);
    }
    return NULL;
}

void *
capsule_shims_translate(void *addr, const char *name, const char *version)
{
    for (shim_state *s = first_shim(); s; s = s->next) {
        if (!capsule_dynobj_contains(&s->self, (ElfW(Addr))addr))
            continue;
        size_t i = shim_index(s, name, version);
        if (i == (size_t)-1 || s->shim->symbols[i].kind == CAPSULE_SYMBOL_TLS)
            return addr;
        return real_definition(s, i, name, version); /* NULL: the library lacks it */
    }
    return addr;
}

int
capsule_shims_export(const char *name, const char *version)
{
    for (shim_state *s = first_shim(); s; s = s->next) {
        if (shim_index(s, name, version) != (size_t)-1)
            return 1;
    }
    return 0;
}

int
capsule_shims_object(ElfW(Addr) base, const char *name, const char *version, void **target)
{
    for (shim_state *s = first_shim(); s; s = s->next) {
        if (s->self.base != base)
            continue;
        size_t i = shim_index(s, name, version);
        if (i == (size_t)-1 || s->shim->symbols[i].kind == CAPSULE_SYMBOL_TLS) {
            *target = NULL; /* not the shim's, or a TLS symbol: never redirected */
            return 1;
        }
        *target = real_definition(s, i, name, version);
        return *target ? 1 : 2;
    }
    return 0;
}

const char *
capsule_shim_refused(const capsule_shim *shim, char *why, size_t size)
{
    if (!shim || !shim->soname)
        return "invalid shim description";
    if (shim->abi != CAPSULE_ABI_VERSION) {
        snprintf(why, size, "shim built for capsule ABI %u, this libcapsule has ABI %d",
                 shim->abi, CAPSULE_ABI_VERSION);
        return why;
    }
    if (shim->n_symbols && (!shim->symbols || !shim->strings || !shim->targets))
        return "invalid shim description";
    return NULL;
}

/* A shim built by another capsule or not built by capsule at all is
 * refused before anything in it is trusted. */
static void
check_description(const capsule_shim *shim)
{
    char why[128];
    const char *refused = capsule_shim_refused(shim, why, sizeof why);

    if (refused)
        fail(shim && shim->soname ? shim : &(capsule_shim){ .soname = "(unknown shim)" }, NULL,
             refused);
}

/* The state of a shim, with its prefix chosen (environment or built-in) and
 * made canonical; kept for good. */
static shim_state *
new_state(capsule_shim *shim)
{
    const char *prefix = capsule_shim_prefix(shim);
    shim_state *s;

    capsule_debug(CAPSULE_DEBUG_PATH, "%s: init, prefix %s", shim->soname, prefix);
    char *real = capsule_shim_canonical_prefix(prefix);
    if (!real)
        fail(shim, prefix, capsule_error());
    if (strcmp(real, prefix) != 0)
        capsule_debug(CAPSULE_DEBUG_PATH, "%s: prefix %s is %s", shim->soname, prefix, real);
    if (!(s = calloc(1, sizeof *s)))
        fail(shim, real, "out of memory");
    s->shim = shim;
    s->prefix = real;
    return s;
}

const char **
capsule_shim_roots(const capsule_shim *shim, size_t *n)
{
    size_t n_roots = 1;

    while (shim->exports && shim->exports[n_roots - 1])
        n_roots++;
    const char **roots = calloc(n_roots, sizeof *roots);
    if (!roots)
        return NULL;
    roots[0] = shim->soname;
    for (size_t i = 1; i < n_roots; i++)
        roots[i] = shim->exports[i - 1];
    *n = n_roots;
    return roots;
}

/* The target and the `exports` sonames with their dependencies, resolved
 * under the prefix. Shared sonames come first: their placeholders must be
 * in the namespace before anything from the prefix needs them. */
static void
resolve_roots(shim_state *s, capsule_depset *set)
{
    const capsule_shim *shim = s->shim;
    size_t n_roots;
    capsule_ns *ns = NULL;
    char **exclude = NULL;
    const char **roots = capsule_shim_roots(shim, &n_roots);

    if (!roots)
        fail(shim, s->prefix, "out of memory");
    if (capsule_ns_open(s->prefix, capsule_boundary_entries, &ns) != 0 ||
        capsule_ns_share(ns, shim->share) != 0 ||
        !(exclude = capsule_ns_with_shared(ns, shim->exclude)) ||
        capsule_resolve(s->prefix, roots, n_roots, (const char *const *)exclude, set) != 0)
        fail(shim, s->prefix, capsule_error());
    free(exclude);
    free(roots);
    s->ns = ns;
}

/* Loads the namespace and learns every address the pass needs. */
static void
load_capsule(shim_state *s, capsule_depset *set)
{
    if (capsule_ns_load(s->ns, set, s->shim->exclude) != 0 ||
        load_providers(s, set) != 0 || index_self(s) != 0)
        fail(s->shim, s->prefix, capsule_error());
    capsule_depset_free(set);
    pin_self(s);
    if (adopt_program_copies(s) != 0)
        fail(s->shim, s->prefix, capsule_error());
}

static void
announce_ready(const capsule_shim *shim)
{
    capsule_debug(CAPSULE_DEBUG_PATH, "%s: ready", shim->soname);
    if (capsule_debug_flags & CAPSULE_DEBUG_NS) {
        char when[300];
        snprintf(when, sizeof when, "%s ready", shim->soname);
        capsule_nsmap_print(when);
    }
}

/* The set-up, run under ld.so's load lock (serial.h): init_lock is only
 * ever taken after it, so holding it across calls into ld.so cannot
 * deadlock against a thread inside a dlopen. */
static void
init_serialised(void *arg)
{
    capsule_shim *shim = arg;
    capsule_depset set;

    double t_start = capsule_debug_now_us();
    pthread_mutex_lock(&init_lock);
    for (shim_state *done = shims; done; done = done->next) {
        if (done->shim == shim) { /* set up already, by a call that could not wait */
            pthread_mutex_unlock(&init_lock);
            return;
        }
    }
    shim_state *s = new_state(shim);
    resolve_roots(s, &set);
    double t_resolved = capsule_debug_now_us();
    load_capsule(s, &set);
    double t_loaded = capsule_debug_now_us();
    /* Published before the pass: dlsym from other threads translates
     * lookups that land in this shim from now on. */
    s->next = shims;
    __atomic_store_n(&shims, s, __ATOMIC_RELEASE);
    if (redirect(s) != 0)
        fail(shim, s->prefix, capsule_error());
    double t_done = capsule_debug_now_us();
    capsule_debug(CAPSULE_DEBUG_TIME,
                  "%s: init %.0f us (resolve %.0f, load %.0f, relocate %.0f)", shim->soname,
                  t_done - t_start, t_resolved - t_start, t_loaded - t_resolved,
                  t_done - t_loaded);
    capsule_nsmap_note(capsule_ns_lmid(s->ns), s->prefix);
    pthread_mutex_unlock(&init_lock);
    announce_ready(shim);
}

void
capsule_shim_init(capsule_shim *shim)
{
    capsule_refuse_static(shim ? shim->soname : NULL); /* before any thread-local access */
    check_description(shim);
    capsule_debug_init();
    capsule_serial_run(init_serialised, shim);
}

static shim_state *
state_of(const capsule_shim *shim)
{
    for (shim_state *s = first_shim(); s; s = s->next) {
        if (s->shim == shim)
            return s;
    }
    return NULL;
}

void *
capsule_shim_wait(capsule_shim *shim, size_t index)
{
    if (!shim || index >= shim->n_symbols)
        capsule_shim_unresolved(shim, index);
    shim_state *s = state_of(shim);
    if (!s) {
        /* Called before the shim's set-up finished (another thread runs it,
         * under ld.so's load lock, which the set-up here waits for) or
         * began (its constructor has not run yet): the set-up is idempotent
         * and serialised, so one call covers both. */
        capsule_shim_init(shim);
        s = state_of(shim);
    }
    void *target = s ? target_of(s, index) : NULL;
    if (!target)
        capsule_shim_unresolved(shim, index);
    return target;
}

void
capsule_shim_unresolved(const capsule_shim *shim, size_t index)
{
    char line[1024];
    void *frames[64];
    const capsule_symbol *sym =
        shim && index < shim->n_symbols ? &shim->symbols[index] : NULL;
    const char *version = sym ? symbol_version(shim, sym) : NULL;

    snprintf(line, sizeof line, "capsule: %s: %s%s%s called but not resolved\n",
             shim ? shim->soname : "(unknown shim)",
             sym ? symbol_name(shim, sym) : "(unknown symbol)", version ? "@" : "",
             version ? version : "");
    if (write(STDERR_FILENO, line, strlen(line)) >= 0) {
        int n = backtrace(frames, 64);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }
#ifdef CAPSULE_COVERAGE
    extern void __gcov_dump(void);
    __gcov_dump();
#endif
    abort();
}
