/* Exported data and COPY relocations.
 *
 * A program that uses a variable of a library directly (non-PIE, and PIE
 * as gcc builds it on x86-64) holds its own copy, filled at start-up by a
 * COPY relocation, and every object in the default namespace binds to that
 * copy. ld.so filled it from the shim (zeros). So the copy becomes the one
 * variable: it gets the real library's value, and every GLOB_DAT or
 * absolute slot inside the capsule bound to the real definition (or, on
 * i386, into it: &array[i]) is pointed at it,
 * as glibc does for a normally linked library. Programs that reach the
 * variable through their GOT instead get the real definition from the shim
 * policy, and need nothing here.
 *
 * Limits: a pointer to the variable that the real library's constructors
 * stored before this ran still points at the library's own definition; a
 * library built with -Bsymbolic or protected visibility reaches its own
 * definition directly (glibc has the same limit with COPY relocations). */
#define _GNU_SOURCE
#include "datacopy.h"

#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "dynobj.h"
#include "forklock.h"
#include "reloc.h"
#include "resolve.h"

typedef struct {
    capsule_ns *ns;
    const char *name;
    ElfW(Addr) real, copy;
    size_t size;  /* bytes to copy */
    int filled;   /* the real value was copied in */
} copy_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t apply_lock = PTHREAD_MUTEX_INITIALIZER; /* one writer of RELRO at a time */

__attribute__((constructor)) static void
register_locks(void)
{
    capsule_forklock_add(&apply_lock, CAPSULE_LOCK_COPY_APPLY);
    capsule_forklock_add(&lock, CAPSULE_LOCK_COPIES);
}
static copy_entry *entries;
static size_t n_entries, cap_entries;

static pthread_once_t program_once = PTHREAD_ONCE_INIT;
static capsule_dynobj program;
static capsule_copy_reloc *program_copies;
static size_t n_program_copies, cap_program_copies;

static int
first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(struct dl_phdr_info *)data = *info;
    return 1;
}

static void
scan_program(void)
{
    struct dl_phdr_info info;
    const ElfW(Dyn) *dyn = NULL;

    memset(&info, 0, sizeof info);
    dl_iterate_phdr(first_object, &info);
    for (size_t i = 0; i < info.dlpi_phnum; i++) {
        if (info.dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info.dlpi_addr + info.dlpi_phdr[i].p_vaddr);
    }
    if (!dyn || capsule_dynobj_init(&program, "(main program)", info.dlpi_addr, dyn,
                                    info.dlpi_phdr, info.dlpi_phnum) != 0)
        return;
    for (size_t i = 0; i < program.n_rel; i++) {
        const capsule_rel *r = &program.rel[i];
        size_t sym = CAPSULE_REL_SYM(r->r_info);
        if (CAPSULE_REL_TYPE(r->r_info) != CAPSULE_R_COPY || sym == 0 ||
            (program.n_symbols && sym >= program.n_symbols) ||
            program.symtab[sym].st_name >= program.strsz)
            continue;
        if (capsule_grow((void **)&program_copies, &cap_program_copies, n_program_copies,
                         sizeof *program_copies) != 0)
            return;
        program_copies[n_program_copies++] = (capsule_copy_reloc){
            program.strtab + program.symtab[sym].st_name,
            capsule_dynobj_symbol_version(&program, sym),
            program.base + r->r_offset,
            program.symtab[sym].st_size,
            ELFW(ST_BIND)(program.symtab[sym].st_info) == STB_WEAK,
        };
    }
}

size_t
capsule_datacopy_program(const capsule_copy_reloc **out)
{
    pthread_once(&program_once, scan_program);
    *out = program_copies;
    return n_program_copies;
}

int
capsule_datacopy_add(capsule_ns *ns, const char *name, void *real, const capsule_copy_reloc *copy,
                     size_t size)
{
    size_t n = copy->size && copy->size < size ? copy->size : size;

    pthread_mutex_lock(&lock);
    if (capsule_grow((void **)&entries, &cap_entries, n_entries, sizeof *entries) != 0) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    entries[n_entries++] = (copy_entry){ ns, name, (ElfW(Addr))real, copy->where, n, 0 };
    pthread_mutex_unlock(&lock);
    return 0;
}

/* Copied after the slots were pointed at the copies: a copied variable
 * that holds the address of another (a vtable's typeinfo, a typeinfo's
 * base class) then holds the program's copy of it, as under ld.so. A
 * copy is usually in the program's RELRO area (gcc places copies of
 * read-only data there): written like the pass writes slots. */
int
capsule_datacopy_fill(capsule_ns *ns)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    for (size_t i = 0; rc == 0 && i < n_entries; i++) {
        copy_entry *e = &entries[i];
        if (e->ns != ns || e->filled)
            continue;
        rc = capsule_reloc_copy(&program, e->copy, (const void *)e->real, e->size);
        if (rc != 0) {
            capsule_error_set("%s: copying it into the program: %s", e->name, capsule_error());
            break;
        }
        e->filled = 1;
        capsule_debug(CAPSULE_DEBUG_RELOC,
                      "%s: the program's copy at %#lx is the variable (%zu bytes%s)", e->name,
                      (unsigned long)e->copy, e->size,
                      e->copy < program.relro_end && e->copy + e->size > program.relro_start
                          ? ", RELRO" : "");
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

typedef struct {
    capsule_ns *ns;
    copy_entry *list;
    size_t n;
} apply_ctx;

static int
copy_lookup(void *data, const capsule_slot *slot, ElfW(Addr) *value)
{
    const apply_ctx *ctx = data;

    if (slot->type == CAPSULE_R_JUMP_SLOT)
        return 0;
    for (size_t i = 0; i < ctx->n; i++) {
        ElfW(Addr) offset;
        if (capsule_slot_bound_to(slot, ctx->list[i].real, ctx->list[i].size, &offset) &&
            strcmp(ctx->list[i].name, slot->name) == 0) {
            *value = ctx->list[i].copy + offset;
            return 1;
        }
    }
    return 0;
}

#pragma weak _dl_find_object

static int
apply_object(struct dl_phdr_info *info, void *data)
{
    capsule_policy policy = { "exported data", copy_lookup, data };
    const ElfW(Dyn) *dyn = capsule_phdr_dynamic(info);
    struct dl_find_object found;
    capsule_dynobj o;
    size_t n = 0;

    if (!dyn || !info->dlpi_name || capsule_is_glibc_family(info->dlpi_name) ||
        (_dl_find_object && _dl_find_object((void *)dyn, &found) != 0) ||
        capsule_dynobj_init(&o, info->dlpi_name, info->dlpi_addr, dyn, info->dlpi_phdr,
                            info->dlpi_phnum) != 0)
        return 0; /* glibc, or still being loaded by another thread */
    if (capsule_reloc_object(&o, &policy, &n) != 0)
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s", o.name, capsule_error());
    else if (n)
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %zu slot(s) pointed at the program's copies",
                      o.name, n);
    capsule_dynobj_fini(&o);
    return 0;
}

void
capsule_datacopy_apply(capsule_ns *ns)
{
    apply_ctx ctx = { ns, NULL, 0 };
    size_t cap = 0;

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].ns != ns)
            continue;
        if (capsule_grow((void **)&ctx.list, &cap, ctx.n, sizeof *ctx.list) != 0)
            break;
        ctx.list[ctx.n++] = entries[i];
    }
    pthread_mutex_unlock(&lock);
    if (ctx.n) {
        pthread_mutex_lock(&apply_lock); /* one writer of RELRO at a time */
        /* ld.so's dl_iterate_phdr holds its write lock on the lists of
         * loaded objects: none can be unmapped under the walk. */
        capsule_ns_foreach(ns, apply_object, &ctx);
        pthread_mutex_unlock(&apply_lock);
    }
    free(ctx.list);
}
