#define _GNU_SOURCE
#include "reloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"
#include "forklock.h"
#include "objects.h"
#include "pltrewrite.h"
#include "resolve.h"

typedef struct {
    ElfW(Addr) where, value;
} pending;

typedef struct {
    pending *slots;
    size_t n, cap;
    int relro;  /* some slot lies in the RELRO range */
    /* JUMP_SLOTs whose PLT entries ld.so may have made direct branches */
    capsule_plt_patch *plt;
    size_t n_plt, cap_plt;
} pending_list;

static int
add_pending(pending_list *l, ElfW(Addr) where, ElfW(Addr) value)
{
    if (capsule_grow((void **)&l->slots, &l->cap, l->n, sizeof *l->slots) != 0)
        return capsule_error_set("out of memory");
    l->slots[l->n].where = where;
    l->slots[l->n].value = value;
    l->n++;
    return 0;
}

static int
add_plt(pending_list *l, const capsule_slot *slot, ElfW(Addr) branch, ElfW(Addr) value)
{
    if (capsule_grow((void **)&l->plt, &l->cap_plt, l->n_plt, sizeof *l->plt) != 0)
        return capsule_error_set("out of memory");
    l->plt[l->n_plt++] = (capsule_plt_patch){ slot->name, slot->where, branch, value };
    return 0;
}

static int
in_relro(const capsule_dynobj *o, ElfW(Addr) addr)
{
    return addr >= o->relro_start && addr < o->relro_end;
}

/* A JUMP_SLOT holding the object's own definition of its symbol was bound
 * by ld.so (at start-up under -z now, or by a first call): it is not lazy,
 * although its value lies inside the object like a PLT entry's. */
static int
binds_own_definition(const capsule_dynobj *o, const ElfW(Sym) *sym, ElfW(Addr) current)
{
    /* An IFUNC's bound value is its resolver's choice, unknown here: such a
     * slot counts as lazy, and the policy asks the default scope instead. */
    if (sym->st_shndx == SHN_UNDEF || ELFW(ST_TYPE)(sym->st_info) == STT_GNU_IFUNC)
        return 0;
    return current == (sym->st_shndx == SHN_ABS ? 0 : o->base) + sym->st_value;
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
    slot.object = o;
    slot.symbol = &o->symtab[sym];
    if (slot.symbol->st_name >= o->strsz)
        return 0;
    /* The name is only read by a policy that needs it. */
    slot.name = o->strtab + slot.symbol->st_name;
    slot.version = capsule_dynobj_symbol_version(o, sym);
    slot.type = type;
    slot.where = o->base + r->r_offset;
    if (!capsule_dynobj_contains(o, slot.where))
        return 0;
    slot.current = *(const ElfW(Addr) *)slot.where;
    slot.addend_in_slot = type == CAPSULE_R_ABS && CAPSULE_REL_ADDEND_IN_SLOT;
    if (type == CAPSULE_R_ABS)
        slot.current -= CAPSULE_REL_ADDEND(r);
    slot.lazy = type == CAPSULE_R_JUMP_SLOT && capsule_dynobj_contains(o, slot.current) &&
                !binds_own_definition(o, slot.symbol, slot.current);
    if (!policy->lookup(policy->ctx, &slot, &value))
        return 0;
    if (type == CAPSULE_R_ABS)
        value += CAPSULE_REL_ADDEND(r);
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
                  : type == CAPSULE_R_GLOB_DAT ? "GLOB_DAT" : CAPSULE_R_ABS_NAME,
                  (unsigned long)slot.where, (unsigned long)value);
    ElfW(Addr) branch = type == CAPSULE_R_JUMP_SLOT ? capsule_plt_branch(o, r) : 0;
    if (branch && add_plt(out, &slot, branch, value) != 0)
        return -1;
    return add_pending(out, slot.where, value);
}

/* One writer of RELRO pages (and of PLT entries) at a time: two writers of
 * one object's range (the pass and the copy of exported data) would each
 * restore PROT_READ under the other's writes. A leaf lock: nothing is
 * called under it but mprotect, the writes and tracing. */
static pthread_mutex_t relro_lock = PTHREAD_MUTEX_INITIALIZER;

typedef void (*write_fn)(void *ctx);

static int
write_relro_locked(const capsule_dynobj *o, int relro, write_fn write, void *ctx)
{
    size_t len = o->relro_end - o->relro_start;
    int rc = 0;

    if (relro && mprotect((void *)o->relro_start, len, PROT_READ | PROT_WRITE) != 0) {
        rc = capsule_error_set("%s: mprotect RELRO writable: %s", o->name, strerror(errno));
    } else {
        write(ctx);
        /* PROT_READ is exactly what ld.so leaves there: once an object is
         * relocated it mprotects this same page range (PT_GNU_RELRO rounded
         * down to pages, as relro_start/relro_end are) to PROT_READ, and
         * only fully loaded objects get here. */
        if (relro && mprotect((void *)o->relro_start, len, PROT_READ) != 0)
            rc = capsule_error_set("%s: mprotect RELRO read-only: %s", o->name,
                                   strerror(errno));
    }
    return rc;
}

static int
write_relro(const capsule_dynobj *o, int relro, write_fn write, void *ctx)
{
    pthread_mutex_lock(&relro_lock);
    int rc = write_relro_locked(o, relro, write, ctx);
    pthread_mutex_unlock(&relro_lock);
    return rc;
}

static void
write_slots(void *ctx)
{
    const pending_list *l = ctx;

    for (size_t i = 0; i < l->n; i++)
        *(ElfW(Addr) *)l->slots[i].where = l->slots[i].value;
}

/* The slots, then the PLT entries ld.so made direct branches to what the
 * slots held (pltrewrite.h), under the one lock. */
static int
write_pending(const capsule_dynobj *o, const pending_list *l)
{
    pthread_mutex_lock(&relro_lock);
    int rc = write_relro_locked(o, l->relro, write_slots, (void *)l);
    if (rc == 0 && l->n_plt)
        rc = capsule_plt_redirect(o, l->plt, l->n_plt);
    pthread_mutex_unlock(&relro_lock);
    return rc;
}

typedef struct {
    void *where;
    const void *from;
    size_t n;
} byte_copy;

static void
write_bytes(void *ctx)
{
    const byte_copy *c = ctx;

    memcpy(c->where, c->from, c->n);
}

int
capsule_reloc_copy(const capsule_dynobj *o, ElfW(Addr) where, const void *from, size_t n)
{
    byte_copy c = { (void *)where, from, n };

    if (!n)
        return 0;
    if (where + n < where || !capsule_dynobj_contains(o, where) ||
        !capsule_dynobj_contains(o, where + n - 1))
        return capsule_error_set("%s: %zu bytes at %#lx lie outside the object", o->name, n,
                                 (unsigned long)where);
    int relro = where < o->relro_end && where + n > o->relro_start;
    if (!relro && (!(capsule_dynobj_segment_flags(o, where) & PF_W) ||
                   !(capsule_dynobj_segment_flags(o, where + n - 1) & PF_W)))
        return capsule_error_set("%s: %zu bytes at %#lx lie in a read-only segment", o->name, n,
                                 (unsigned long)where);
    return write_relro(o, relro, write_bytes, &c);
}

int
capsule_reloc_object(const capsule_dynobj *o, const capsule_policy *policy, size_t *n_written)
{
    ElfW(Addr) where, value;

    return capsule_reloc_object_ex(o, policy, n_written, &where, &value);
}

int
capsule_reloc_object_ex(const capsule_dynobj *o, const capsule_policy *policy, size_t *n_written,
                        ElfW(Addr) *first_where, ElfW(Addr) *first_value)
{
    pending_list l = { 0 };
    int rc = 0;

    *n_written = 0;
    if (!o->symtab || !o->strtab)
        return 0;
    for (size_t i = 0; rc == 0 && i < o->n_rel; i++)
        rc = consider(o, &o->rel[i], policy, &l);
    for (size_t i = 0; rc == 0 && i < o->n_jmprel; i++)
        rc = consider(o, &o->jmprel[i], policy, &l);
    if (rc == 0 && l.n)
        rc = write_pending(o, &l);
    if (rc == 0)
        *n_written = l.n;
    if (rc == 0 && l.n)
        *first_where = l.slots[0].where, *first_value = l.slots[0].value;
    free(l.slots);
    free(l.plt);
    return rc;
}

/* ---- the objects of the default namespace ---- */

/* The pass keeps its progress on each object in the object's record
 * (objects.h). Objects are told apart by their dynamic section, load base
 * and name; after an unload (dlclose) the records are decoded again and
 * compared: another object loaded at the same place (a plugin rebuilt and
 * reloaded under its old path) gets a fresh record. The same object unloaded
 * and loaded again is recognised by a slot the pass wrote no longer holding
 * what was written (ld.so relocated it afresh). */

#define MAX_POLICIES 256

/* Everything below is guarded by objects_lock. It is never held while
 * calling into ld.so's own locks (dlopen, dlsym): only dl_iterate_phdr,
 * whose callback does all the work, is called under it. */
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
register_locks(void)
{
    capsule_forklock_add(&objects_lock, CAPSULE_LOCK_PASS);
    capsule_forklock_add(&relro_lock, CAPSULE_LOCK_RELRO);
}
static const capsule_policy *policies[MAX_POLICIES];
static const void *skips[MAX_POLICIES];
static size_t n_policies, n_skips;
static unsigned long long last_subs;

/* ld.so's load and unload counters as the last pass saw them (written
 * under objects_lock, read without it): a pass is due when they moved.
 * ~0: the last pass left an object for later (still being loaded). A pass
 * that failed is tried again once they move, not at every dl* call (its
 * error is printed each time). */
static unsigned long long done_adds = ~0ULL, done_subs = ~0ULL;

/* glibc 2.35+: an object is listed by _dl_find_object only once it is fully
 * relocated (and until dlclose starts removing it). Older glibc: trust the
 * list. */
#pragma weak _dl_find_object

static int
fully_loaded(const ElfW(Dyn) *dyn)
{
    struct dl_find_object found;

    if (!_dl_find_object)
        return 1;
    return _dl_find_object((void *)dyn, &found) == 0;
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

/* ld.so, the vDSO, libcapsule, the glibc family and the shims are never
 * processed. */
static int
skipped(const struct dl_phdr_info *info)
{
    static const char self;

    if (covers(info, getauxval(AT_BASE)) || covers(info, getauxval(AT_SYSINFO_EHDR)) ||
        covers(info, (ElfW(Addr))&self))
        return 1;
    if (info->dlpi_name && (strncmp(info->dlpi_name, "linux-vdso", 10) == 0 ||
                            (info->dlpi_name[0] && capsule_is_glibc_family(info->dlpi_name))))
        return 1;
    for (size_t i = 0; i < n_skips; i++) {
        if (covers(info, (ElfW(Addr))skips[i]))
            return 1;
    }
    return 0;
}

/* The policies an object still needs, tried in registration order. */
typedef struct {
    size_t from;
} pending_policies;

static int
combined_lookup(void *ctx, const capsule_slot *slot, ElfW(Addr) *value)
{
    const pending_policies *pp = ctx;

    for (size_t i = pp->from; i < n_policies; i++) {
        if (policies[i]->lookup(policies[i]->ctx, slot, value))
            return 1;
    }
    return 0;
}

static int
process(capsule_object *o)
{
    pending_policies pp = { o->n_applied };
    capsule_policy combined = { "capsule", combined_lookup, &pp };
    ElfW(Addr) where = 0, value = 0;
    size_t n = 0;

    if (o->sentinel_where && *(const ElfW(Addr) *)o->sentinel_where != o->sentinel_value) {
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: loaded again, processed afresh", o->dyn.name);
        pp.from = 0, o->sentinel_where = 0;
    }
    o->seen = 1;
    if (pp.from >= n_policies)
        return 0;
    if (capsule_reloc_object_ex(&o->dyn, &combined, &n, &where, &value) != 0)
        return -1;
    if (n && !o->sentinel_where)
        o->sentinel_where = where, o->sentinel_value = value;
    o->n_applied = n_policies;
    if (capsule_debug_flags & CAPSULE_DEBUG_RELOC) {
        char what[512] = "";
        for (size_t i = pp.from, len = 0; i < n_policies && len < sizeof what; i++)
            len += (size_t)snprintf(what + len, sizeof what - len, "%s%s", i > pp.from ? ", " : "",
                                    policies[i]->what);
        capsule_debug_print(CAPSULE_DEBUG_RELOC, "%s: %zu slot(s) redirected for %s", o->dyn.name,
                            n, what);
    }
    return 0;
}

typedef struct {
    int rc;
    int partial; /* an object was left for the next pass */
    unsigned long long adds, subs;
} pass_state;

static int
visit_object(struct dl_phdr_info *info, size_t size, void *data)
{
    pass_state *st = data;
    const ElfW(Dyn) *dyn = capsule_phdr_dynamic(info);

    (void)size;
    st->adds = info->dlpi_adds;
    st->subs = info->dlpi_subs;
    if (!dyn || skipped(info))
        return 0;
    if (!fully_loaded(dyn)) {
        st->partial = 1;
        return 0;
    }
    capsule_object *o = capsule_objects_program(info, dyn, info->dlpi_subs != last_subs);
    if (!o || process(o) != 0) {
        st->rc = -1;
        return 1;
    }
    return 0;
}

static int
pass_locked(void)
{
    pass_state st = { 0, 0, 0, 0 };

    capsule_objects_unsee();
    dl_iterate_phdr(visit_object, &st);
    if (st.rc == 0 && st.subs != last_subs)
        capsule_objects_prune();
    last_subs = st.subs;
    __atomic_store_n(&done_adds, st.partial ? ~0ULL : st.adds, __ATOMIC_RELEASE);
    __atomic_store_n(&done_subs, st.partial ? ~0ULL : st.subs, __ATOMIC_RELEASE);
    return st.rc;
}

static int
add_locked(const capsule_policy *policy, const void *skip)
{
    if (n_policies == MAX_POLICIES)
        return capsule_error_set("too many shims (at most %d)", MAX_POLICIES - 1);
    if (skip)
        skips[n_skips++] = skip;
    policies[n_policies++] = policy;
    return 0;
}

int
capsule_reloc_add(const capsule_policy *policy, const void *skip)
{
    pthread_mutex_lock(&objects_lock);
    int rc = add_locked(policy, skip);
    pthread_mutex_unlock(&objects_lock);
    return rc;
}

int
capsule_reloc_register(const capsule_policy *policy, const void *skip)
{
    pthread_mutex_lock(&objects_lock);
    int rc = add_locked(policy, skip);
    if (rc == 0)
        rc = pass_locked();
    pthread_mutex_unlock(&objects_lock);
    return rc;
}

int
capsule_reloc_pass(void)
{
    int rc;

    pthread_mutex_lock(&objects_lock);
    rc = n_policies ? pass_locked() : 0;
    pthread_mutex_unlock(&objects_lock);
    return rc;
}

typedef struct {
    unsigned long long adds, subs;
} load_counters;

static int
read_counters(struct dl_phdr_info *info, size_t size, void *data)
{
    load_counters *c = data;

    (void)size;
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
    return 1; /* the counters are the same for every object: one is enough */
}

int
capsule_reloc_catch_up(void)
{
    load_counters now = { 0, 0 };

    dl_iterate_phdr(read_counters, &now);
    if (now.adds == __atomic_load_n(&done_adds, __ATOMIC_ACQUIRE) &&
        now.subs == __atomic_load_n(&done_subs, __ATOMIC_ACQUIRE))
        return 0;
    return capsule_reloc_pass();
}
