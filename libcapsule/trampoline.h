/* Entry points of the dl* wrappers, and the one architecture-specific trick
 * they need: reaching glibc's dlopen, dlmopen and dlsym with the caller's
 * return address intact (the search paths, the namespace, RTLD_NEXT and
 * RTLD_DEFAULT depend on who called), after C code has looked at the
 * call. */
#ifndef CAPSULE_TRAMPOLINE_H
#define CAPSULE_TRAMPOLINE_H

#include <stdint.h>

#include "error.h"

/* A wrapped call as the trampoline saved it on the stack. A decide function
 * either sets `result` and returns 1 (the trampoline returns result to the
 * caller), or returns 0: the trampoline then jumps to glibc's function with
 * the (possibly edited) arguments and the caller's own return address. */
typedef struct capsule_dl_call {
    void *result;
    void *context;        /* the capsule namespace for calls from inside, else NULL */
    uintptr_t a2, a1, a0; /* the first three integer arguments */
    const void *caller;   /* the caller's return address */
} capsule_dl_call;

CAPSULE_HIDDEN int capsule_dlsym_decide(capsule_dl_call *call);
CAPSULE_HIDDEN int capsule_dlvsym_decide(capsule_dl_call *call);

/* Prepare hooks of the program's dlopen and dlmopen: run before glibc's
 * function, which they return; the trampoline jumps to it with the
 * caller's arguments and return address. */
CAPSULE_HIDDEN void *capsule_outside_dlopen_prepare(void);
CAPSULE_HIDDEN void *capsule_outside_dlmopen_prepare(void);

/* glibc's functions, as libcapsule itself is bound to them. */
CAPSULE_HIDDEN extern void *capsule_real_dlsym;
CAPSULE_HIDDEN extern void *capsule_real_dlvsym;

/* Entries (addresses only; never called from C; arch/<arch>/trampoline.c).
 * Inside entries are reached from the bridge with the namespace in the
 * context register (bridge.h). */
CAPSULE_HIDDEN void capsule_entry_inside_dlopen(void);
CAPSULE_HIDDEN void capsule_entry_inside_dlsym(void);
CAPSULE_HIDDEN void capsule_entry_inside_dlvsym(void);
CAPSULE_HIDDEN void capsule_entry_outside_dlopen(void);
CAPSULE_HIDDEN void capsule_entry_outside_dlmopen(void);
CAPSULE_HIDDEN void capsule_entry_outside_dlsym(void);
CAPSULE_HIDDEN void capsule_entry_outside_dlvsym(void);

#endif
