/* Placeholders: in-memory objects that stand, inside a capsule namespace,
 * for a library whose one copy is the program's.
 *
 * A placeholder has the soname the capsule needs, every version
 * definition of the real library, and each of its exported symbols is an
 * absolute alias of what the program's global scope binds that name (and
 * version) to: the library's own definition, or an interposer's (an
 * LD_PRELOADed malloc, the executable's own function, the executable's
 * COPY of a variable).
 * Every DT_NEEDED and dlopen of that soname inside the namespace then binds
 * to the program's copy, and no second copy is ever loaded.
 *
 * Two kinds use them: the glibc family (every glibc library in a capsule is
 * a placeholder: the capsule runs on the program's one libc) and the
 * `share` sonames (X11's libX11 and libxcb, whose connection state must be
 * one). The image of a soname is made once per process, sealed, and loaded
 * into every namespace that needs it. */
#ifndef CAPSULE_PLACEHOLDER_H
#define CAPSULE_PLACEHOLDER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>

#include "error.h"

enum capsule_placeholder_kind {
    CAPSULE_PLACEHOLDER_GLIBC,  /* a library of glibc */
    CAPSULE_PLACEHOLDER_SHARED, /* a `share` soname */
};

/* Loads into namespace lmid the placeholder of `soname`, whose program's
 * copy is `program` (a handle in the default namespace), making its image
 * on first use. Returns the handle (its record, objects.h, keeps it: the
 * placeholder stays as the program's copy does), or NULL with an error. */
CAPSULE_HIDDEN void *capsule_placeholder_load(Lmid_t lmid, const char *soname, void *program,
                                              enum capsule_placeholder_kind kind);

#endif
