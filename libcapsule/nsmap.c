/* CAPSULE_DEBUG=ns: the namespace map, "ldd for capsules". After each shim's
 * init and once more at exit (when drivers dlopen()ed later are in), one line
 * per loaded object of every namespace:
 *
 *   capsule[ns]: map <when>: namespace <lmid> prefix <prefix>
 *   capsule[ns]: map <when>: <lmid> <path>
 *
 * Namespaces are walked through glibc's r_debug chain (r_version >= 2 links
 * one r_debug_extended per namespace, glibc 2.35+), so objects loaded by
 * anyone, at any time, are seen. `capsule-shim ldd` formats these lines. */
#define _GNU_SOURCE
#include "nsmap.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug.h"
#include "forklock.h"
#include "objects.h"

#define MAX_NOTED 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
register_lock(void)
{
    capsule_forklock_add(&lock, CAPSULE_LOCK_NSMAP);
}
static struct {
    Lmid_t lmid;
    char *prefix;
} noted[MAX_NOTED];
static size_t n_noted;

void
capsule_nsmap_note(Lmid_t lmid, const char *prefix)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_noted; i++) {
        if (noted[i].lmid == lmid) {
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    if (n_noted < MAX_NOTED && (noted[n_noted].prefix = strdup(prefix)))
        noted[n_noted++].lmid = lmid;
    pthread_mutex_unlock(&lock);
}

static const char *
prefix_of(Lmid_t lmid)
{
    for (size_t i = 0; i < n_noted; i++) {
        if (noted[i].lmid == lmid)
            return noted[i].prefix;
    }
    return NULL;
}

/* A link map entry is glibc's dlopen handle, so dlinfo() tells its namespace. */
static Lmid_t
namespace_of(struct link_map *map, Lmid_t fallback)
{
    Lmid_t lmid;

    return dlinfo(map, RTLD_DI_LMID, &lmid) == 0 ? lmid : fallback;
}

static void
print_namespace(const char *when, struct link_map *head, Lmid_t guess)
{
    Lmid_t lmid = namespace_of(head, guess);
    const char *prefix = prefix_of(lmid);
    char exe[512];

    capsule_debug(CAPSULE_DEBUG_NS, "map %s: namespace %ld prefix %s", when, (long)lmid,
                  prefix ? prefix : lmid == LM_ID_BASE ? "(the program's)" : "(unknown)");
    for (struct link_map *m = head; m; m = m->l_next) {
        const char *name = m->l_name;
        if ((!name || !name[0]) && m == head && lmid == LM_ID_BASE) {
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[n > 0 ? n : 0] = '\0';
            name = n > 0 ? exe : "(the program)";
        }
        const char *label = capsule_objects_label(m);
        if (name && name[0] && label)
            capsule_debug(CAPSULE_DEBUG_NS, "map %s: %ld %s (%s)", when, (long)lmid, name, label);
        else if (name && name[0])
            capsule_debug(CAPSULE_DEBUG_NS, "map %s: %ld %s", when, (long)lmid, name);
    }
}

/* glibc defines _r_debug as a struct r_debug_extended, while <link.h>
 * declares the smaller struct r_debug: hide the declared size from the
 * compiler's bounds checks rather than read past what it believes. */
static struct r_debug_extended *
debug_chain(void)
{
    void *p = &_r_debug;

    __asm__("" : "+r"(p));
    return p;
}

void
capsule_nsmap_print(const char *when)
{
    struct r_debug_extended *r = debug_chain();
    Lmid_t guess = 0;

    if (!(capsule_debug_flags & CAPSULE_DEBUG_NS))
        return;
    pthread_mutex_lock(&lock);
    if (r->base.r_version < 2) {
        print_namespace(when, r->base.r_map, LM_ID_BASE);
    } else {
        for (; r; r = r->r_next, guess++) {
            if (r->base.r_map)
                print_namespace(when, r->base.r_map, guess);
        }
    }
    pthread_mutex_unlock(&lock);
}

static __attribute__((destructor)) void
print_at_exit(void)
{
    capsule_nsmap_print("at exit");
}
