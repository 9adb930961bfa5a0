/* The graphics loaders' data files from the prefix.
 *
 * The Vulkan loader, glvnd, Mesa and libdrm find their drivers through data
 * files at fixed absolute paths (ICD and layer manifests, EGL vendor files,
 * drirc, amdgpu.ids). Inside a capsule those must be the prefix's files, not
 * the process's own /usr/share and /etc (in a container: the runtime's). The
 * bridge (bridge.h) therefore also defines the path-taking libc functions
 * these libraries call (fopen, open, opendir, scandir, stat, access,
 * realpath, readlink and their aliases); each re-roots an absolute path under
 * one of the data directories into the prefix when the prefix has that entry,
 * then calls the program's libc function (the one libc). Everything else
 * passes through unchanged. */
#ifndef CAPSULE_DATADIRS_H
#define CAPSULE_DATADIRS_H

#include <stddef.h>

#include "bridge.h"
#include "error.h"
#include "namespace.h"

/* The data directories: CAPSULE_DATA_DIRS (colon-separated absolute paths;
 * set but empty: none), or the built-in list. */
#define CAPSULE_DATA_DIRS_DEFAULT                                                                  \
    "/usr/share/vulkan:/usr/local/share/vulkan:/etc/vulkan:/etc/xdg/vulkan:"                     \
    "/usr/share/glvnd:/etc/glvnd:/usr/share/egl:/etc/egl:"                                         \
    "/usr/share/drirc.d:/etc/drirc:/usr/share/libdrm:"                                             \
    "/usr/share/nvidia:/etc/nvidia"

/* Fills out[0..max) with the bridge entries of the path wrappers for
 * namespace ns (its prefix); none when the prefix is "/" or the list is
 * empty. Returns how many it filled. Call it before the namespace's bridge
 * exists (it allocates the context, which lives as long as the process). */
CAPSULE_HIDDEN size_t capsule_datadirs_bridge_entries(capsule_ns *ns, capsule_bridge_entry *out,
                                                      size_t max);

#endif
