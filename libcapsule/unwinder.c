/* The unwinder (see unwinder.h). */
#define _GNU_SOURCE
#include "unwinder.h"

#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug.h"
#include "dynobj.h"
#include "namespace.h"
#include "placeholder.h"

/* The program's copy: loaded already, or loaded now (RTLD_LOCAL: nothing
 * the program looks up changes; glibc loads it the same way the first time
 * a thread is cancelled). */
static void *
program_copy(void)
{
    void *h = capsule_program_noload(CAPSULE_UNWINDER_SONAME, RTLD_LAZY);

    if (!h && (h = dlopen(CAPSULE_UNWINDER_SONAME, RTLD_LAZY | RTLD_LOCAL)))
        capsule_debug(CAPSULE_DEBUG_NS, "%s: loaded into the program for the capsule",
                      CAPSULE_UNWINDER_SONAME);
    return h;
}

/* An unwinder that looks frames up with dl_iterate_phdr sees only its own
 * namespace; _dl_find_object (glibc 2.35, libgcc_s of GCC 12) sees all. */
static int
finds_every_frame(const capsule_dynobj *o)
{
    for (size_t i = 1; i < o->n_symbols; i++) {
        const ElfW(Sym) *s = &o->symtab[i];
        if (s->st_shndx == SHN_UNDEF && s->st_name < o->strsz &&
            strcmp(o->strtab + s->st_name, "_dl_find_object") == 0)
            return 1;
    }
    return 0;
}

/* The first version an object of set needs from libgcc_s and the program's
 * copy lacks: copied to why; 0 when there is none. */
static int
lacks_version(const capsule_dynobj *o, const capsule_depset *set, char *why, size_t size)
{
    for (size_t d = 0; d < set->n; d++) {
        const capsule_dep *dep = &set->deps[d];
        for (size_t i = 0; i < dep->elf.n_verneed; i++) {
            const capsule_verneed *v = &dep->elf.verneed[i];
            if (strcmp(v->file, CAPSULE_UNWINDER_SONAME) == 0 &&
                !capsule_dynobj_defines_version(o, v->version)) {
                snprintf(why, size, "%s needs version %s of it, which the program's lacks",
                         dep->soname, v->version);
                return 1;
            }
        }
    }
    return 0;
}

/* Why the program's copy cannot be the capsule's (empty when it can). */
static void
check_program_copy(void *program, const capsule_depset *set, char *why, size_t size)
{
    struct link_map *map = NULL;
    capsule_dynobj o;

    why[0] = '\0';
    if (dlinfo(program, RTLD_DI_LINKMAP, &map) != 0 || !map ||
        capsule_dynobj_from_link_map(&o, map) != 0) {
        snprintf(why, size, "the program's copy cannot be read");
        return;
    }
    if (!finds_every_frame(&o))
        snprintf(why, size, "the program's copy (%s) does not use _dl_find_object, so it "
                 "cannot find the capsule's frames", map->l_name);
    else
        lacks_version(&o, set, why, size);
    capsule_dynobj_fini(&o);
}

/* The capsule keeps its own unwinder: C++ exceptions cannot cross. Said
 * once per namespace, and only to a program that could throw or catch one. */
static void
keep_own(const char *prefix, const char *why)
{
    capsule_debug(CAPSULE_DEBUG_NS, "%s: the capsule keeps the prefix's: %s",
                  CAPSULE_UNWINDER_SONAME, why);
    void *cxx = capsule_program_noload("libstdc++.so.6", RTLD_LAZY);
    if (!cxx)
        return;
    dlclose(cxx);
    char line[1024];
    int n = snprintf(line, sizeof line, "capsule: prefix %s: %s: %s; the capsule keeps its "
                     "own unwinder, and a C++ exception thrown across the boundary will "
                     "abort the process\n", prefix, CAPSULE_UNWINDER_SONAME, why);
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n
                                                                     : sizeof line - 1) < 0)
        return;
}

int
capsule_unwinder_share(Lmid_t lmid, const char *prefix, const capsule_depset *set)
{
    size_t d = capsule_depset_find(set, CAPSULE_UNWINDER_SONAME);
    char why[512];

    if (d == CAPSULE_NO_PARENT || set->deps[d].parent == CAPSULE_NO_PARENT)
        return 0; /* not needed, or the shim's own target */
    void *program = program_copy();
    if (!program) {
        snprintf(why, sizeof why, "the program has no copy (%s)", dlerror());
        keep_own(prefix, why);
        return 0;
    }
    check_program_copy(program, set, why, sizeof why);
    if (why[0]) {
        keep_own(prefix, why);
        return 0;
    }
    if (!capsule_placeholder_load(lmid, CAPSULE_UNWINDER_SONAME, program,
                                  CAPSULE_PLACEHOLDER_SHARED))
        return -1;
    capsule_debug(CAPSULE_DEBUG_NS, "%s: the capsule uses the program's (one unwinder)",
                  CAPSULE_UNWINDER_SONAME);
    return 1;
}

/* ---- one exception state: the program's libstdc++'s ---- */

size_t
capsule_unwinder_bridge_entries(capsule_bridge_entry *out, size_t max)
{
    static const char *const names[] = { "__cxa_get_globals", "__cxa_get_globals_fast" };
    void *cxx = capsule_program_noload("libstdc++.so.6", RTLD_LAZY);
    size_t n = 0;

    if (!cxx) {
        capsule_debug(CAPSULE_DEBUG_NS, "libstdc++.so.6: the program has none: a capsule's "
                      "C++ runtime keeps its own exception state");
        return 0;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0] && n < max; i++) {
        void *f = dlvsym(cxx, names[i], "CXXABI_1.3");
        if (f)
            out[n++] = (capsule_bridge_entry){ names[i], f, NULL };
    }
    dlclose(cxx);
    if (n != sizeof names / sizeof names[0])
        n = 0; /* both or neither: they return the one per-thread state */
    capsule_debug(CAPSULE_DEBUG_NS, "libstdc++.so.6: %s", n ? "a capsule's C++ runtime uses "
                  "the program's exception state" : "the program's lacks __cxa_get_globals");
    return n;
}
