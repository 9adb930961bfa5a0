/* PLT entries ld.so rewrote into direct branches.
 *
 * glibc 2.40+ on x86-64, with GLIBC_TUNABLES=glibc.cpu.plt_rewrite=1 or 2,
 * rewrites the PLT entries of objects linked `-z now -z mark-plt` once they
 * are relocated: each becomes a jump straight to what its JUMP_SLOT was
 * bound to, and the slot is no longer read. A JUMP_SLOT the relocation pass
 * rewrites must then have its PLT entry rewritten too, or calls keep going
 * to the old definition (a shim's stub, glibc's dlsym). The encodings are
 * the architecture's (arch/<arch>/pltrewrite.c); an architecture whose ld.so
 * rewrites nothing defines no CAPSULE_DT_PLT in its arch.h and gets the
 * no-ops below. */
#ifndef CAPSULE_PLTREWRITE_H
#define CAPSULE_PLTREWRITE_H

#include <stddef.h>

#include "dynobj.h"
#include "error.h"

/* A JUMP_SLOT the pass has rewritten, and where its PLT entry is. */
typedef struct capsule_plt_patch {
    const char *name;    /* the symbol, for tracing */
    ElfW(Addr) slot;     /* the JUMP_SLOT (already holding value) */
    ElfW(Addr) branch;   /* its PLT entry's branch, from the relocation */
    ElfW(Addr) value;    /* the new definition */
} capsule_plt_patch;

#ifdef CAPSULE_DT_PLT
/* Where the PLT entry of JUMP_SLOT relocation r branches, or 0 when the
 * object's PLT is not one ld.so may rewrite. */
CAPSULE_HIDDEN ElfW(Addr) capsule_plt_branch(const capsule_dynobj *o, const capsule_rel *r);

/* For each patch whose PLT entry ld.so made a direct branch, points that
 * branch at the new value, as ld.so would have written it; entries still
 * jumping through their slot need nothing. The code pages are writable
 * only around the writes, then get their segment's protection back. The
 * caller serialises writers (reloc.c's RELRO lock). An entry that cannot
 * be rewritten keeps its old target, noted under CAPSULE_DEBUG=reloc.
 * Returns -1 with an error only when code could not be made read-only
 * again. */
CAPSULE_HIDDEN int capsule_plt_redirect(const capsule_dynobj *o, const capsule_plt_patch *patches,
                                        size_t n);
#else
static inline ElfW(Addr)
capsule_plt_branch(const capsule_dynobj *o, const capsule_rel *r)
{
    (void)o;
    (void)r;
    return 0;
}

static inline int
capsule_plt_redirect(const capsule_dynobj *o, const capsule_plt_patch *patches, size_t n)
{
    (void)o;
    (void)patches;
    (void)n;
    return 0;
}
#endif

#endif
