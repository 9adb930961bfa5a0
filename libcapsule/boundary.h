/* What every object of a capsule binds to first: the bridge's entries,
 * assembled here, above the namespace layer, from the wrappers that own
 * them (the dl* family, the loaders' data files, the C++ exception state). */
#ifndef CAPSULE_BOUNDARY_H
#define CAPSULE_BOUNDARY_H

#include <stddef.h>

#include "bridge.h"
#include "error.h"
#include "namespace.h"

/* A capsule_bridge_fill_fn (namespace.h). */
CAPSULE_HIDDEN size_t capsule_boundary_entries(capsule_ns *ns, capsule_bridge_entry *out,
                                               size_t max);

#endif
