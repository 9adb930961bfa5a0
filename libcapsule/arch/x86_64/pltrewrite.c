/* x86-64: PLT entries glibc's ld.so rewrote into direct branches
 * (pltrewrite.h).
 *
 * With glibc.cpu.plt_rewrite=1 or 2, ld.so rewrites each PLT entry of a
 * -z mark-plt object (its JUMP_SLOT's r_addend names the entry's indirect
 * branch) into `jmp rel32` to the bound definition when it is in reach, or,
 * with =2 on an APX CPU, `jmpabs imm64`; the rest of the entry becomes
 * int3. Without IBT the branch goes at the entry's start, over its ENDBR64;
 * with IBT, at the branch itself. An entry out of reach is left jumping
 * through its slot. Here a rewritten entry gets the same encodings for the
 * new definition; when that is out of a rel32's reach and the CPU has no
 * jmpabs, the linker's own `jmp *slot(%rip)` goes back in, through the slot
 * the pass has just written: the call then costs what it costs without the
 * rewrite, and still reaches the right definition. */
#define _GNU_SOURCE
#include "elfarch.h"

#if defined(CAPSULE_DT_PLT) && defined(__x86_64__) && !defined(__ILP32__)

#include "pltrewrite.h"

#include <emmintrin.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>

#include "debug.h"

enum {
    ENTRY = 16,     /* what one aligned store replaces: every encoding fits */
    JMP_REL32 = 5,  /* e9 rel32 */
    JMP_SLOT = 6,   /* ff 25 disp32: jmp *disp32(%rip) */
    JMPABS = 11,    /* d5 00 a1 imm64 (APX) */
    INT3 = 0xcc,
};

typedef enum { KEPT, WROTE_REL32, WROTE_JMPABS, WROTE_SLOT } encoding;

typedef struct {
    ElfW(Addr) entry;
    unsigned char image[ENTRY];
} entry_write;

ElfW(Addr)
capsule_plt_branch(const capsule_dynobj *o, const capsule_rel *r)
{
    ElfW(Addr) branch = o->base + (ElfW(Addr))r->r_addend;
    ElfW(Addr) entry = branch & ~(ElfW(Addr))(o->plt_entsize - 1);

    /* Entries must be a power of two of at least ENTRY bytes (ld.so aligns
     * down by their size): each is then ENTRY-aligned. */
    if (!o->plt_entsize || (o->plt_entsize & (o->plt_entsize - 1)) || branch < o->plt_start ||
        entry < o->plt_start || entry + ENTRY > o->plt_start + o->plt_size)
        return 0;
    return branch;
}

static int
is_jmp_rel32(const unsigned char *p)
{
    return p[0] == 0xe9;
}

static int
is_jmpabs(const unsigned char *p)
{
    return p[0] == 0xd5 && p[1] == 0x00 && p[2] == 0xa1;
}

/* The offset of the direct branch ld.so wrote into the entry (image), or
 * -1 when it is not one; `branch` is the relocation's offset of the
 * entry's indirect branch. */
static int
direct_branch(const unsigned char *img, size_t branch)
{
    if (is_jmp_rel32(img) || is_jmpabs(img))
        return 0;
    if (branch && branch + JMP_REL32 <= ENTRY && is_jmp_rel32(img + branch))
        return (int)branch;
    if (branch && branch + JMPABS <= ENTRY && is_jmpabs(img + branch))
        return (int)branch;
    return -1;
}

static int
fits_rel32(ElfW(Addr) to, ElfW(Addr) from, int32_t *disp)
{
    int64_t d = (int64_t)(to - from);

    if (d < INT32_MIN || d > INT32_MAX)
        return 0;
    *disp = (int32_t)d;
    return 1;
}

/* The entry still jumps through its slot ([bnd] jmp *slot(%rip)). */
static int
through_slot(const unsigned char *img, size_t branch, ElfW(Addr) entry, ElfW(Addr) slot)
{
    size_t at = branch + (branch < ENTRY && img[branch] == 0xf2);
    int32_t disp;

    if (at + JMP_SLOT > ENTRY || img[at] != 0xff || img[at + 1] != 0x25)
        return 0;
    memcpy(&disp, img + at + 2, sizeof disp);
    return entry + at + JMP_SLOT + (ElfW(Addr))(int64_t)disp == slot;
}

/* Points the direct branch at offset `at` of the image of the entry at
 * `entry` to `value`, filling the rest of the entry with int3 as ld.so
 * does. */
static encoding
encode(unsigned char *img, size_t at, ElfW(Addr) entry, ElfW(Addr) slot, ElfW(Addr) value)
{
    int32_t disp;
    size_t end;
    encoding e;

    if (fits_rel32(value, entry + at + JMP_REL32, &disp)) {
        img[at] = 0xe9;
        memcpy(img + at + 1, &disp, sizeof disp);
        end = at + JMP_REL32, e = WROTE_REL32;
    } else if (is_jmpabs(img + at)) {
        memcpy(img + at + 3, &value, sizeof value);
        end = at + JMPABS, e = WROTE_JMPABS;
    } else if (at + JMP_SLOT <= ENTRY && fits_rel32(slot, entry + at + JMP_SLOT, &disp)) {
        img[at] = 0xff;
        img[at + 1] = 0x25;
        memcpy(img + at + 2, &disp, sizeof disp);
        end = at + JMP_SLOT, e = WROTE_SLOT;
    } else {
        return KEPT;
    }
    memset(img + end, INT3, ENTRY - end);
    return e;
}

static int
prot_of(unsigned flags)
{
    return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) |
           (flags & PF_X ? PROT_EXEC : 0);
}

/* One aligned 16-byte store per entry: CPUs with AVX perform it as one
 * access, so a reader never sees half an instruction. */
static void
store_entry(const entry_write *w)
{
    _mm_store_si128((__m128i *)w->entry, _mm_loadu_si128((const __m128i *)w->image));
}

/* The protection the pages get around the stores. ld.so makes them
 * writable and not executable, before any code of the object runs. Here
 * other threads may be running code in those pages (a program that
 * dlopen()s its first shim while its other threads run): without
 * PROT_EXEC they would fault, so while the process has more than one
 * thread the pages stay executable (each entry changes in one atomic
 * store); a kernel that refuses writable code then gets ld.so's way. */
static int
make_writable(ElfW(Addr) lo, ElfW(Addr) hi, unsigned flags)
{
    if (!__libc_single_threaded &&
        mprotect((void *)lo, hi - lo, prot_of(flags) | PROT_WRITE) == 0)
        return 0;
    return mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE);
}

/* Writes the entries, the pages [lo, hi) writable only around the stores,
 * then with their segment's protection again. */
static int
write_entries(const capsule_dynobj *o, const entry_write *w, size_t n, ElfW(Addr) lo,
              ElfW(Addr) hi)
{
    ElfW(Addr) page = (ElfW(Addr))getauxval(AT_PAGESZ);
    unsigned flags = capsule_dynobj_segment_flags(o, lo);

    if (!(flags & PF_X) || capsule_dynobj_segment_flags(o, hi - 1) != flags) {
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: its PLT lies outside one code segment: %zu "
                      "entr%s ld.so rewrote left on their old targets", o->name, n,
                      n == 1 ? "y" : "ies");
        return 0;
    }
    lo &= ~(page - 1);
    hi = (hi + page - 1) & ~(page - 1);
    int writable = (flags & PF_W) != 0;
    if (!writable && make_writable(lo, hi, flags) != 0) {
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: mprotect PLT writable: %s: %zu entr%s ld.so "
                      "rewrote left on their old targets", o->name, strerror(errno), n,
                      n == 1 ? "y" : "ies");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        store_entry(&w[i]);
    if (!writable && mprotect((void *)lo, hi - lo, prot_of(flags)) != 0)
        return capsule_error_set("%s: mprotect PLT back to read-only: %s", o->name,
                                 strerror(errno));
    return 0;
}

static const char *
encoding_name(encoding e)
{
    return e == WROTE_REL32 ? "jmp rel32" : e == WROTE_JMPABS ? "jmpabs" : "jmp *slot(%rip)";
}

int
capsule_plt_redirect(const capsule_dynobj *o, const capsule_plt_patch *p, size_t n)
{
    entry_write *w = NULL;
    size_t nw = 0, cap = 0;
    ElfW(Addr) lo = ~(ElfW(Addr))0, hi = 0;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!p[i].branch)
            continue;
        ElfW(Addr) entry = p[i].branch & ~(ElfW(Addr))(o->plt_entsize - 1);
        unsigned char img[ENTRY];
        memcpy(img, (const void *)entry, ENTRY);
        int at = direct_branch(img, p[i].branch - entry);
        if (at < 0) {
            if (!through_slot(img, p[i].branch - entry, entry, p[i].slot))
                capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s: PLT entry %#lx not understood, left",
                              o->name, p[i].name, (unsigned long)entry);
            continue;
        }
        encoding e = encode(img, (size_t)at, entry, p[i].slot, p[i].value);
        if (e == KEPT) {
            capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s: PLT entry %#lx rewritten by ld.so "
                          "cannot reach %#lx: left on its old target", o->name, p[i].name,
                          (unsigned long)entry, (unsigned long)p[i].value);
            continue;
        }
        if (capsule_grow((void **)&w, &cap, nw, sizeof *w) != 0) {
            rc = capsule_error_set("out of memory");
            break;
        }
        w[nw].entry = entry;
        memcpy(w[nw++].image, img, ENTRY);
        lo = entry < lo ? entry : lo;
        hi = entry + ENTRY > hi ? entry + ENTRY : hi;
        capsule_debug(CAPSULE_DEBUG_RELOC, "%s: %s: PLT entry %#lx rewritten by ld.so -> %s %#lx",
                      o->name, p[i].name, (unsigned long)entry, encoding_name(e),
                      (unsigned long)p[i].value);
    }
    if (rc == 0 && nw)
        rc = write_entries(o, w, nw, lo, hi);
    free(w);
    return rc;
}

#else
typedef int capsule_pltrewrite_x86_64_unused; /* ISO C: no empty translation unit */
#endif
