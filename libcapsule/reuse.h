/* Successful resolutions of dlopen inside a capsule, remembered per
 * namespace, requested name and requester, and reused while the files and
 * directories they came from are unchanged (reuse.c says what is checked
 * and what staleness is accepted). A plan is the list of host paths to load,
 * leaves first, the requested object last. */
#ifndef CAPSULE_REUSE_H
#define CAPSULE_REUSE_H

#include <stddef.h>

#include "error.h"
#include "namespace.h"
#include "resolve.h"

/* A copy of the plan remembered for the key (its length in *n), or NULL
 * when there is none or it is no longer valid. */
CAPSULE_HIDDEN char **capsule_reuse_plan(capsule_ns *ns, const char *name, const char *requester,
                                         size_t n_exclude, size_t *n);

/* Remembers the plan of a resolution whose load succeeded, taking `plan`
 * over; index[i] is plan[i]'s entry in set. Objects the resolution took as
 * already loaded keep the plan valid only while they stay loaded there. */
CAPSULE_HIDDEN void capsule_reuse_remember(capsule_ns *ns, const char *name,
                                           const char *requester, size_t n_exclude,
                                           const capsule_depset *set, char **plan, size_t n,
                                           const size_t *index);

/* Drops the key's entry (its plan failed to load). */
CAPSULE_HIDDEN void capsule_reuse_forget(const capsule_ns *ns, const char *name,
                                         const char *requester);

CAPSULE_HIDDEN void capsule_plan_free(char **plan, size_t n);

#endif
