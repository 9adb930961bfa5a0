/* Shared sonames: libraries whose one copy, the program's, the capsule uses
 * too (X11's libX11 and libxcb: a Display* or xcb_connection_t* crossing the
 * boundary must meet the same library state on both sides). */
#ifndef CAPSULE_SHARE_H
#define CAPSULE_SHARE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>

#include "error.h"

typedef struct capsule_ns capsule_ns;

/* Finds the program's copy of soname (loading it into the default
 * namespace when the program has none yet) and loads into namespace ns its
 * placeholder (placeholder.h): every DT_NEEDED and dlopen of soname inside
 * the namespace then binds to the program's copy. loaded_only: only when the
 * program has it loaded already. Returns 0 when shared, 1
 * when not (the program cannot load it, or the namespace already holds a
 * copy: the capsule then takes its own from the prefix, as for any other
 * soname), -1 with an error. */
CAPSULE_HIDDEN int capsule_share_load(capsule_ns *ns, const char *soname, int loaded_only);

#endif
