/* The namespace map printed under CAPSULE_DEBUG=ns ("ldd for capsules"). */
#ifndef CAPSULE_NSMAP_H
#define CAPSULE_NSMAP_H

#include <dlfcn.h>

#include "error.h"

/* Remembers which prefix namespace lmid was made for. */
CAPSULE_HIDDEN void capsule_nsmap_note(Lmid_t lmid, const char *prefix);
/* Prints every namespace and its objects, tagged `when`, if the ns topic is on. */
CAPSULE_HIDDEN void capsule_nsmap_print(const char *when);

#endif
