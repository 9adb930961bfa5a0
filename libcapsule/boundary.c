#include "boundary.h"

#include "datadirs.h"
#include "unwinder.h"
#include "wrappers.h"

size_t
capsule_boundary_entries(capsule_ns *ns, capsule_bridge_entry *out, size_t max)
{
    size_t n = capsule_wrap_bridge_entries(ns, out, max);

    n += capsule_datadirs_bridge_entries(ns, out + n, max - n);
    return n + capsule_unwinder_bridge_entries(out + n, max - n);
}
