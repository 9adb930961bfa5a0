#define _GNU_SOURCE
#include "reloc.h"

#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"

typedef struct {
    ElfW(Addr) where, value;
} pending;

typedef struct {
    pending *slots;
    size_t n, cap;
    int relro;  /* some slot lies in the RELRO range */
} pending_list;

static int
add_pending(pending_list *l, ElfW(Addr) where, ElfW(Addr) value)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pending *slots = realloc(l->slots, cap * sizeof *slots);
        if (!slots)
            return capsule_error_set("out of memory");
        l->slots = slots;
        l->cap = cap;
    }
    l->slots[l->n].where = where;
    l->slots[l->n].value = value;
    l->n++;
    return 0;
}

static int
in_relro(const capsule_dynobj *o, ElfW(Addr) addr)
{
    return addr >= o->relro_start && addr < o->relro_end;
}

/* Decides one relocation entry; queues the write when the policy wants it. */
static int
consider(const capsule_dynobj *o, const capsule_rel *r, const capsule_policy *policy,
         pending_list *out)
{
    unsigned type = (unsigned)CAPSULE_REL_TYPE(r->r_info);
    size_t sym = CAPSULE_REL_SYM(r->r_info);
    capsule_slot slot;
    ElfW(Addr) value;

    if ((type != CAPSULE_R_JUMP_SLOT && type != CAPSULE_R_GLOB_DAT && type != CAPSULE_R_ABS) ||
        sym == 0 || (o->n_symbols && sym >= o->n_symbols))
        return 0;
    memset(&slot, 0, sizeof slot);
    slot.object = o;
    slot.symbol = &o->symtab[sym];
    if (slot.symbol->st_name >= o->strsz)
        return 0;
    slot.name = o->strtab + slot.symbol->st_name;
    slot.version = capsule_dynobj_symbol_version(o, sym);
    slot.type = type;
    slot.where = o->base + r->r_offset;
    if (!capsule_dynobj_contains(o, slot.where))
        return 0;
    slot.current = *(const ElfW(Addr) *)slot.where;
    if (type == CAPSULE_R_ABS)
        slot.current -= (ElfW(Addr))r->r_addend;
    slot.lazy = type == CAPSULE_R_JUMP_SLOT && capsule_dynobj_contains(o, slot.current);
    if (!policy->lookup(policy->ctx, &slot, &value))
        return 0;
    if (type == CAPSULE_R_ABS)
        value += (ElfW(Addr))r->r_addend;
    if (in_relro(o, slot.where)) {
        out->relro = 1;
    } else if (!(capsule_dynobj_segment_flags(o, slot.where) & PF_W)) {
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s: slot %#lx is in a read-only segment, left",
                      o->name, slot.name, (unsigned long)slot.where);
        return 0;
    }
    capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s%s%s %s slot %#lx -> %#lx", o->name, slot.name,
                  slot.version ? "@" : "", slot.version ? slot.version : "",
                  type == CAPSULE_R_JUMP_SLOT ? (slot.lazy ? "JUMP_SLOT(lazy)" : "JUMP_SLOT")
                  : type == CAPSULE_R_GLOB_DAT ? "GLOB_DAT" : "64",
                  (unsigned long)slot.where, (unsigned long)value);
    return add_pending(out, slot.where, value);
}

static int
write_pending(const capsule_dynobj *o, const pending_list *l)
{
    size_t len = o->relro_end - o->relro_start;

    if (l->relro && mprotect((void *)o->relro_start, len, PROT_READ | PROT_WRITE) != 0)
        return capsule_error_set("%s: mprotect RELRO writable: %s", o->name, strerror(errno));
    for (size_t i = 0; i < l->n; i++)
        *(ElfW(Addr) *)l->slots[i].where = l->slots[i].value;
    if (l->relro && mprotect((void *)o->relro_start, len, PROT_READ) != 0)
        return capsule_error_set("%s: mprotect RELRO read-only: %s", o->name, strerror(errno));
    return 0;
}

int
capsule_reloc_object(const capsule_dynobj *o, const capsule_policy *policy, size_t *n_written)
{
    pending_list l = { 0 };
    int rc = 0;

    *n_written = 0;
    if (!o->symtab || !o->strtab)
        return 0;
    for (size_t i = 0; rc == 0 && i < o->n_rela; i++)
        rc = consider(o, &o->rela[i], policy, &l);
    for (size_t i = 0; rc == 0 && i < o->n_jmprel; i++)
        rc = consider(o, &o->jmprel[i], policy, &l);
    if (rc == 0 && l.n)
        rc = write_pending(o, &l);
    if (rc == 0)
        *n_written = l.n;
    free(l.slots);
    return rc;
}

/* ---- the objects of the default namespace ---- */

typedef struct capsule_object {
    ElfW(Addr) key;        /* its dynamic section's address */
    char *name;
    capsule_dynobj dyn;
    struct capsule_object *next;
} capsule_object;

/* Every object the pass has seen, decoded once (objects dlopen()ed later are
 * added by the next pass). */
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;
static capsule_object *objects;

typedef struct {
    struct dl_phdr_info *infos;
    size_t n, cap;
} phdr_list;

static int
collect(struct dl_phdr_info *info, size_t size, void *data)
{
    phdr_list *l = data;
    (void)size;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct dl_phdr_info *infos = realloc(l->infos, cap * sizeof *infos);
        if (!infos)
            return 1;
        l->infos = infos;
        l->cap = cap;
    }
    l->infos[l->n++] = *info;
    return 0;
}

static const ElfW(Dyn) *
dynamic_of(const struct dl_phdr_info *info)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            return (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
    return NULL;
}

static int
covers(const struct dl_phdr_info *info, ElfW(Addr) addr)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && addr >= info->dlpi_addr + p->p_vaddr &&
            addr < info->dlpi_addr + p->p_vaddr + p->p_memsz)
            return 1;
    }
    return 0;
}

static int
skipped(const struct dl_phdr_info *info, const void *const *skip, size_t n_skip)
{
    static const char self;

    if (covers(info, getauxval(AT_BASE)) || covers(info, getauxval(AT_SYSINFO_EHDR)) ||
        covers(info, (ElfW(Addr))&self))
        return 1;
    if (info->dlpi_name && strncmp(info->dlpi_name, "linux-vdso", 10) == 0)
        return 1;
    for (size_t i = 0; i < n_skip; i++) {
        if (covers(info, (ElfW(Addr))skip[i]))
            return 1;
    }
    return 0;
}

static capsule_object *
object_for(const struct dl_phdr_info *info, const ElfW(Dyn) *dyn)
{
    for (capsule_object *o = objects; o; o = o->next) {
        if (o->key == (ElfW(Addr))dyn)
            return o;
    }
    capsule_object *o = calloc(1, sizeof *o);
    if (!o || !(o->name = strdup(info->dlpi_name ? info->dlpi_name : ""))) {
        free(o);
        capsule_error_set("out of memory");
        return NULL;
    }
    if (capsule_dynobj_init(&o->dyn, o->name, info->dlpi_addr, dyn, info->dlpi_phdr,
                            info->dlpi_phnum) != 0) {
        free(o->name);
        free(o);
        return NULL;
    }
    o->key = (ElfW(Addr))dyn;
    o->next = objects;
    objects = o;
    return o;
}

int
capsule_reloc_default_namespace(const capsule_policy *policy, const void *const *skip,
                                size_t n_skip)
{
    phdr_list l = { 0 };
    int rc = 0;

    if (dl_iterate_phdr(collect, &l) != 0) {
        free(l.infos);
        return capsule_error_set("out of memory");
    }
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const ElfW(Dyn) *dyn = dynamic_of(&l.infos[i]);
        if (!dyn || skipped(&l.infos[i], skip, n_skip))
            continue;
        capsule_object *o = object_for(&l.infos[i], dyn);
        size_t n = 0;
        if (!o) {
            rc = -1;
            break;
        }
        rc = capsule_reloc_object(&o->dyn, policy, &n);
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %zu slot(s) redirected for %s", o->dyn.name, n,
                      policy->what);
    }
    pthread_mutex_unlock(&objects_lock);
    free(l.infos);
    return rc;
}

int
capsule_dynobj_from_link_map(capsule_dynobj *o, const struct link_map *map)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)map->l_addr;
    const ElfW(Phdr) *phdr = NULL;
    size_t phnum = 0;

    /* Shared objects map their ELF header at the load base. */
    if (eh && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_phentsize == sizeof *phdr) {
        phdr = (const ElfW(Phdr) *)(map->l_addr + eh->e_phoff);
        phnum = eh->e_phnum;
    }
    return capsule_dynobj_init(o, map->l_name, map->l_addr, map->l_ld, phdr, phnum);
}
