#define _GNU_SOURCE
#include "namespace.h"

#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

typedef struct {
    char *path;
    void *handle;
} loaded;

struct capsule_ns {
    char *prefix;
    Lmid_t lmid;
    int has_lmid;
    loaded *objects;
    size_t n, cap;
    capsule_ns *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static capsule_ns *registry;

static capsule_ns *
ns_for(const char *prefix)
{
    for (capsule_ns *ns = registry; ns; ns = ns->next) {
        if (strcmp(ns->prefix, prefix) == 0)
            return ns;
    }
    capsule_ns *ns = calloc(1, sizeof *ns);
    if (!ns || !(ns->prefix = strdup(prefix))) {
        free(ns);
        capsule_error_set("out of memory");
        return NULL;
    }
    ns->next = registry;
    registry = ns;
    return ns;
}

static void *
find_loaded(capsule_ns *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (strcmp(ns->objects[i].path, path) == 0)
            return ns->objects[i].handle;
    }
    return NULL;
}

static size_t
count_namespaces(void)
{
    size_t n = 0;

    for (capsule_ns *ns = registry; ns; ns = ns->next)
        n += ns->has_lmid;
    return n;
}

/* Out of namespaces or of the static TLS glibc reserves for them: say which
 * limit, how many capsule namespaces hold it, and what (if anything) raises it. */
static int
dlmopen_error(const char *path)
{
    const char *err = dlerror();
    size_t used = count_namespaces();

    if (!err)
        err = "unknown dlmopen error";
    if (strstr(err, "no more namespaces"))
        return capsule_error_set("dlmopen %s: %s (glibc allows 16 namespaces in all, one of them "
                                 "the program's, and %zu are capsules: one per prefix; the "
                                 "glibc.rtld.nns tunable cannot raise this limit, fewer "
                                 "prefixes can)",
                                 path, err, used);
    if (strstr(err, "static TLS"))
        return capsule_error_set("dlmopen %s: %s (static TLS reserved for namespaces ran out "
                                 "with %zu capsule namespaces, one per prefix: raise the "
                                 "glibc tunable glibc.rtld.nns, e.g. "
                                 "GLIBC_TUNABLES=glibc.rtld.nns=16, at most 16 namespaces in all)",
                                 path, err, used);
    return capsule_error_set("dlmopen %s: %s", path, err);
}

static int
load_one(capsule_ns *ns, const char *path)
{
    void *handle;

    if (find_loaded(ns, path))
        return 0;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        loaded *objects = realloc(ns->objects, cap * sizeof *objects);
        if (!objects)
            return capsule_error_set("out of memory");
        ns->objects = objects;
        ns->cap = cap;
    }
    handle = dlmopen(ns->has_lmid ? ns->lmid : LM_ID_NEWLM, path, RTLD_LAZY | RTLD_LOCAL);
    if (!handle)
        return dlmopen_error(path);
    if (!ns->has_lmid) {
        if (dlinfo(handle, RTLD_DI_LMID, &ns->lmid) != 0)
            return capsule_error_set("dlinfo %s: %s", path, dlerror());
        ns->has_lmid = 1;
        capsule_debug(CAPSULE_DEBUG_NS, "new namespace %ld for prefix %s", (long)ns->lmid,
                      ns->prefix);
    }
    capsule_debug(CAPSULE_DEBUG_NS, "namespace %ld: loaded %s", (long)ns->lmid, path);
    ns->objects[ns->n].path = strdup(path);
    ns->objects[ns->n].handle = handle;
    if (!ns->objects[ns->n].path)
        return capsule_error_set("out of memory");
    ns->n++;
    return 0;
}

int
capsule_ns_load(const char *prefix, const capsule_depset *set, capsule_ns **out)
{
    int rc = 0;

    pthread_mutex_lock(&registry_lock);
    capsule_ns *ns = ns_for(prefix);
    if (!ns)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < set->n_order; i++)
        rc = load_one(ns, set->deps[set->order[i]].path);
    pthread_mutex_unlock(&registry_lock);
    *out = ns;
    return rc;
}

void *
capsule_ns_handle(capsule_ns *ns, const char *path)
{
    pthread_mutex_lock(&registry_lock);
    void *handle = find_loaded(ns, path);
    pthread_mutex_unlock(&registry_lock);
    return handle;
}

Lmid_t
capsule_ns_lmid(const capsule_ns *ns)
{
    return ns->lmid;
}
