/* Exported data and COPY relocations: one variable on both sides. */
#ifndef CAPSULE_DATACOPY_H
#define CAPSULE_DATACOPY_H

#include <stddef.h>

#include "elfarch.h"
#include "error.h"
#include "namespace.h"

typedef struct capsule_copy_reloc {
    const char *name;
    const char *version; /* required version, or NULL */
    ElfW(Addr) where;    /* the program's copy */
    size_t size;
    int weak;            /* the program's reference is weak */
} capsule_copy_reloc;

/* The main program's COPY relocations, decoded once. */
CAPSULE_HIDDEN size_t capsule_datacopy_program(const capsule_copy_reloc **out);

/* Makes the program's copy the one variable: every slot in namespace ns
 * holding `real` for `name` is pointed at the copy (by
 * capsule_datacopy_apply, now and whenever objects enter ns), and the real
 * library's current value is copied into it (by capsule_datacopy_fill,
 * once, after the first apply). */
CAPSULE_HIDDEN int capsule_datacopy_add(capsule_ns *ns, const char *name, void *real,
                                        const capsule_copy_reloc *copy, size_t size);
CAPSULE_HIDDEN void capsule_datacopy_apply(capsule_ns *ns);
/* Copies the real values into the copies not filled yet (RELRO pages made
 * writable only around the copy); -1 with the error set on failure. */
CAPSULE_HIDDEN int capsule_datacopy_fill(capsule_ns *ns);

#endif
