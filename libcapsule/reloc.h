/* The relocation pass: rewriting the symbol-bound slots of mapped objects
 * according to a lookup policy. */
#ifndef CAPSULE_RELOC_H
#define CAPSULE_RELOC_H

#include <stddef.h>

#include "dynobj.h"
#include "error.h"

/* One relocation slot bound to a symbol, as the policy sees it. */
typedef struct capsule_slot {
    const capsule_dynobj *object; /* whose slot it is */
    const char *name;
    const char *version;          /* required version, or NULL */
    const ElfW(Sym) *symbol;      /* the referencing symbol table entry */
    unsigned type;                /* CAPSULE_R_* */
    ElfW(Addr) where;             /* slot address */
    ElfW(Addr) current;           /* the symbol value it holds now (addend removed),
                                     or with addend_in_slot, symbol value + addend */
    int addend_in_slot;           /* an absolute slot of a REL architecture (i386):
                                     its addend is known only as current's distance
                                     from the definition it is bound to */
    int lazy;                     /* a JUMP_SLOT still pointing into its own PLT
                                     (never one bound to the object's own definition) */
} capsule_slot;

/* Whether slot is bound to the definition at `start` (`size` bytes): for
 * an addend_in_slot slot, current lies in [start, start + size] (a pointer
 * one past the end included); *offset is then what to add to the new
 * definition's address (0 for other slots, whose addend the pass adds). */
static inline int
capsule_slot_bound_to(const capsule_slot *slot, ElfW(Addr) start, size_t size,
                      ElfW(Addr) *offset)
{
    if (!slot->addend_in_slot) {
        *offset = 0;
        return slot->current == start;
    }
    if (slot->current < start || slot->current - start > size)
        return 0;
    *offset = slot->current - start;
    return 1;
}

/* Returns 1 and sets *value to rewrite the slot, 0 to leave it. *value is
 * the new definition's address, plus, for an addend_in_slot slot, its
 * offset from the old one (capsule_slot_bound_to); other addends are added
 * by the pass. */
typedef int (*capsule_lookup_fn)(void *ctx, const capsule_slot *slot, ElfW(Addr) *value);

typedef struct capsule_policy {
    const char *what;     /* for tracing, e.g. the shim's soname */
    capsule_lookup_fn lookup;
    void *ctx;
} capsule_policy;

/* Processes one object with one policy: collects the slots to rewrite, then
 * writes them, making its RELRO range writable only around the writes.
 * Slots in non-writable segments (code) are never touched. */
CAPSULE_HIDDEN int capsule_reloc_object(const capsule_dynobj *object, const capsule_policy *policy,
                                        size_t *n_written);

/* Like capsule_reloc_object; also reports one slot it wrote (when it wrote any). */
CAPSULE_HIDDEN int capsule_reloc_object_ex(const capsule_dynobj *object,
                                           const capsule_policy *policy, size_t *n_written,
                                           ElfW(Addr) *first_where, ElfW(Addr) *first_value);

/* Copies n bytes into object o at `where` (its copy of a variable), making
 * its RELRO range writable only around the copy, as the pass does for
 * slots; bytes in a read-only segment other than RELRO are an error. */
CAPSULE_HIDDEN int capsule_reloc_copy(const capsule_dynobj *object, ElfW(Addr) where,
                                      const void *from, size_t n);

/* Adds `policy` for every object of the default namespace, present and
 * future (objects containing `skip`, when given, are never processed), and
 * runs a pass. The policy must stay valid for good. Never call it, or
 * capsule_reloc_pass, holding a lock that a constructor could want. */
CAPSULE_HIDDEN int capsule_reloc_register(const capsule_policy *policy, const void *skip);
/* The same without the pass (the next pass applies it). */
CAPSULE_HIDDEN int capsule_reloc_add(const capsule_policy *policy, const void *skip);

/* Processes the objects of the default namespace that are new (or loaded
 * again) since the last pass; objects still being loaded by another thread
 * wait for the next one. Skips ld.so, the vDSO, libcapsule, the glibc family
 * and the shims. */
CAPSULE_HIDDEN int capsule_reloc_pass(void);
/* capsule_reloc_pass when ld.so loaded or unloaded anything since the last
 * complete pass (its counters moved); else only reads the counters. */
CAPSULE_HIDDEN int capsule_reloc_catch_up(void);

#endif
