/* dlsym and dlvsym on both sides of the capsule boundary (decide functions
 * for the trampolines of trampoline.c).
 *
 * Outside: every call first runs the relocation pass when ld.so loaded
 * anything since the last one (what the program's dlopen brought: see
 * wrap_dlopen.c). A lookup that lands in a shim returns the real
 * definition (or, for exported data the program holds a COPY of, that
 * copy: the one variable). The capsule's private dependencies are in another namespace
 * and never found. RTLD_DEFAULT misses and names no shim exports go to
 * glibc untouched, with the caller's own return address; RTLD_NEXT for a
 * name a shim exports is answered here by searching the objects loaded
 * after the caller, in load order (glibc searches the caller's lookup scope:
 * the same order for objects loaded at start-up or RTLD_GLOBAL). A name a
 * shim exports but its real library lacks (a shim built from another
 * version) is looked up as without the shim: an unversioned name gives the
 * library's default definition, else the search goes on after the shim
 * (RTLD_DEFAULT, RTLD_NEXT) or gives NULL (the shim's handle).
 *
 * Inside: dlsym(RTLD_DEFAULT) and dlsym(dlopen(NULL)) search the bridge (so
 * allocator and dl* names give the wrappers), then the capsule's scope (its
 * shims' targets, then RTLD_GLOBAL objects); an RTLD_DEFAULT miss goes on to
 * glibc, which searches the caller's own dependencies. Other handles and
 * RTLD_NEXT go to glibc untouched: lookups from inside stay inside. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include "dynobj.h"
#include "namespace.h"
#include "shims.h"
#include "trampoline.h"
#include "wrappers.h"

/* Read by the trampolines (arch/<arch>/trampoline.c). */
void *capsule_real_dlsym = (void *)dlsym;
void *capsule_real_dlvsym = (void *)dlvsym;

#define MAX_SCOPE 256

static void *
lookup(void *handle, const char *name, const char *version)
{
    return version ? dlvsym(handle, name, version) : dlsym(handle, name);
}

/* An RTLD_GLOBAL object is looked up only while it is still loaded: the
 * RTLD_NOLOAD reference lasts as long as the lookup. */
static void *
lookup_entry(capsule_ns *ns, const capsule_scope_entry *e, const char *name,
             const char *version)
{
    if (e->handle)
        return lookup(e->handle, name, version);
    void *h = dlmopen(capsule_ns_lmid(ns), e->path, RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return NULL;
    void *r = lookup(h, name, version);
    dlclose(h);
    return r;
}

static void *
inside_scope(capsule_ns *ns, const char *name, const char *version)
{
    capsule_scope_entry scope[MAX_SCOPE];
    void *r = lookup(capsule_ns_bridge(ns), name, version);
    size_t n;

    if (r)
        return r;
    n = capsule_ns_scope(ns, scope, MAX_SCOPE);
    for (size_t i = 0; i < n && !r; i++)
        r = lookup_entry(ns, &scope[i], name, version);
    return r;
}

/* ---- RTLD_NEXT from outside, for names a shim exports ---- */

typedef struct {
    const void *caller;
    const char *name, *version;
    int after, decided;
    int lacking;  /* passed a shim whose real library lacks the name */
    void *result;
} next_search;

static int
covers(const struct dl_phdr_info *info, const void *addr)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        ElfW(Addr) a = (ElfW(Addr))addr, start = info->dlpi_addr + p->p_vaddr;
        if (p->p_type == PT_LOAD && a >= start && a < start + p->p_memsz)
            return 1;
    }
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
next_visit(struct dl_phdr_info *info, size_t size, void *data)
{
    next_search *st = data;
    const ElfW(Dyn) *dyn = dynamic_of(info);
    capsule_dynobj o;
    void *target;

    (void)size;
    if (!st->after) {
        st->after = covers(info, st->caller);
        return 0;
    }
    int shim = capsule_shims_object(info->dlpi_addr, st->name, st->version, &target);
    if (shim) {
        if (target)
            st->result = target, st->decided = 1;
        else if (shim == 2)
            st->lacking = 1;
        return st->decided;
    }
    if (!dyn || capsule_dynobj_init_lookup(&o, info->dlpi_name, info->dlpi_addr, dyn,
                                           info->dlpi_phdr, info->dlpi_phnum) != 0)
        return 0;
    long idx = capsule_dynobj_lookup(&o, st->name, st->version);
    /* A definition without a version (.gnu.version index 0 or 1) satisfies
     * a versioned relocation, but not dlvsym(), which glibc looks up as a
     * hidden reference. */
    if (idx >= 0 && st->version && o.versym && !capsule_dynobj_symbol_version(&o, (size_t)idx))
        idx = -1;
    if (idx >= 0) {
        /* Defined before any shim: glibc gives the same answer. */
        st->decided = ELFW(ST_TYPE)(o.symtab[idx].st_info) != STT_TLS;
        if (st->decided)
            st->result = capsule_dynobj_address(&o, idx);
        capsule_dynobj_fini(&o);
        return 1;
    }
    capsule_dynobj_fini(&o);
    return 0;
}

/* ---- RTLD_DEFAULT from outside ---- */

/* The main program's handle searches exactly the global scope (its search
 * list is where RTLD_GLOBAL objects are added). */
static void *
global_scope(void)
{
    static void *main_handle;
    void *h = __atomic_load_n(&main_handle, __ATOMIC_ACQUIRE);

    if (!h) {
        h = dlopen(NULL, RTLD_LAZY);
        __atomic_store_n(&main_handle, h, __ATOMIC_RELEASE);
    }
    return h;
}

/* The caller's own dependencies, searched through a real dlopen handle. A
 * link map is a dlsym handle only once it has been dlopen()ed by name:
 * glibc gives the others (start-up dependencies, the dependencies of a
 * dlopen()ed library) no search list, and dlsym on one reads past an empty
 * list (a SEGV in do_lookup_x). RTLD_NOLOAD gives the handle, building that
 * list when missing, without loading anything. */
static void *
caller_lookup(const struct link_map *map, const char *name, const char *version)
{
    void *h, *r;

    if (!map->l_name || !map->l_name[0] || !(h = dlopen(map->l_name, RTLD_LAZY | RTLD_NOLOAD)))
        return NULL;
    r = lookup(h, name, version);
    dlclose(h);
    return r;
}

/* glibc searches the global scope, then the caller's own dependencies (a
 * library dlopen()ed RTLD_LOCAL sees its own). Both are asked here, and a
 * shim answer translated; anything else goes to glibc with the caller. */
static int
default_lookup(capsule_dl_call *call, const char *name, const char *version)
{
    struct link_map *map = NULL;
    Dl_info info;
    void *r = lookup(global_scope(), name, version);

    if (!r && dladdr1(call->caller, &info, (void **)&map, RTLD_DL_LINKMAP) && map &&
        (void *)map != global_scope())
        r = caller_lookup(map, name, version);
    if (!r)
        return 0;
    call->result = capsule_shims_translate(r, name, version);
    if (!call->result) {
        /* The shim's real library lacks the name: glibc would have gone on
         * to the objects after it. */
        next_search st = { r, name, version, 0, 0, 0, NULL };
        dl_iterate_phdr(next_visit, &st);
        call->result = st.result;
    }
    return 1;
}

/* ---- decide ---- */

static int
decide(capsule_dl_call *call, const char *version)
{
    void *handle = (void *)call->a0;
    const char *name = (const char *)call->a1;
    capsule_ns *ns = call->context;

    if (!ns)
        capsule_outside_catch_up(); /* what the program's dlopen brought */
    if (!name)
        return 0;
    if (ns) {
        if (handle != RTLD_DEFAULT && handle != capsule_ns_bridge(ns))
            return 0;
        call->result = inside_scope(ns, name, version);
        return call->result != NULL || handle != RTLD_DEFAULT;
    }
    if (handle == RTLD_NEXT) {
        if (!capsule_shims_export(name, version))
            return 0;
        next_search st = { call->caller, name, version, 0, 0, 0, NULL };
        dl_iterate_phdr(next_visit, &st);
        call->result = st.result;
        /* Nothing after a shim whose library lacks the name: NULL, where
         * glibc would find the shim's stub. */
        return st.decided || st.lacking;
    }
    if (handle == RTLD_DEFAULT)
        return default_lookup(call, name, version);
    void *r = lookup(handle, name, version);
    call->result = r ? capsule_shims_translate(r, name, version) : NULL;
    return 1;
}

int
capsule_dlsym_decide(capsule_dl_call *call)
{
    return decide(call, NULL);
}

int
capsule_dlvsym_decide(capsule_dl_call *call)
{
    return decide(call, (const char *)call->a2);
}
