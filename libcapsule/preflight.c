/* capsule_shim_preflight: a dlopen() of a shim whose capsule cannot be set
 * up fails, with dlerror() giving the `capsule:` line's text, instead of
 * ending the process from the shim's constructor.
 *
 * ld.so runs constructors with its error handler off (dl-open.c), so the
 * constructor cannot make a dlopen fail; an error signalled while ld.so
 * relocates the objects of a dlopen is caught by that dlopen, which then
 * unloads them and fails. The shim calls this from an IFUNC resolver,
 * which runs while ld.so relocates the shim, after the shim's own data
 * relocations (R_X86_64_IRELATIVE comes last: in .rela.plt, and deferred
 * to the end of its range under BIND_NOW). The shim calls only when libc's
 * `environ` is set: while the program starts, libc is not initialised yet
 * (so `environ` is NULL), an error would be fatal, and libcapsule itself
 * may not be relocated yet; the constructor then reports as it always did.
 *
 * What runs here runs under ld.so's load lock in the middle of a dlopen:
 * no dlopen (a nested one could relocate objects the outer dlopen has not
 * finished), no libcapsule lock but leaf ones, no thread-local data of
 * libcapsule's own (error.c), and nothing left behind on failure: the
 * failed dlopen may unload libcapsule as well. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capsule.h"
#include "debug.h"
#include "namespace.h"
#include "resolve.h"
#include "shims.h"
#include "static.h"

/* ld.so's own: fails the dlopen in progress (longjmp to its catch) with
 * errstring as dlerror()'s text when objname is "" and errcode 0.
 * GLIBC_PRIVATE, exported by ld.so in 2.36, 2.41 and 2.43. noreturn: a
 * sanitizer then clears the stack frames the jump abandons (ld.so's own
 * longjmp is not one it intercepts). */
typedef __attribute__((noreturn)) void (*signal_error_fn)(int errcode, const char *objname,
                                                          const char *occasion,
                                                          const char *errstring);

/* The sonames never taken from the prefix by the set-up, and more: every
 * soname the shim might share, also those the set-up would take from the
 * prefix after all (a default-list soname the program has not loaded). A
 * soname the preflight leaves out is only not checked: the preflight must
 * never fail a dlopen whose set-up would work. NULL when out of memory. */
static char **
exclude_list(const capsule_shim *shim, const char *prefix)
{
    const char *const *share = shim->share ? shim->share : capsule_ns_default_share();
    capsule_ns *ns = capsule_ns_find(prefix);
    size_t n = 0, n_share = 0;
    char **known = ns ? capsule_ns_with_shared(ns, shim->exclude) : NULL;

    if (ns && !known)
        return NULL;
    for (const char *const *e = known ? (const char *const *)known : shim->exclude; e && *e; e++)
        n++;
    while (share[n_share])
        n_share++;
    char **list = calloc(n + n_share + 1, sizeof *list);
    if (list) {
        for (size_t i = 0; i < n; i++)
            list[i] = known ? known[i] : (char *)shim->exclude[i];
        for (size_t i = 0; i < n_share; i++)
            list[n + i] = (char *)share[i];
    }
    free(known);
    return list;
}

/* The set-up's resolution and glibc check; 0, or -1 with the error. */
static int
check_prefix(const capsule_shim *shim, const char *prefix)
{
    capsule_depset set;
    size_t n_roots = 0;
    const char **roots = capsule_shim_roots(shim, &n_roots);
    char **exclude = roots ? exclude_list(shim, prefix) : NULL;
    int rc = -1;

    if (!exclude)
        capsule_error_set("out of memory");
    else if (capsule_resolve(prefix, roots, n_roots, (const char *const *)exclude, &set) == 0) {
        rc = capsule_ns_check_glibc_loaded(&set);
        capsule_depset_free(&set);
    }
    free(exclude);
    free(roots);
    return rc;
}

/* The `capsule:` line capsule_shim_init would print for shim (no newline),
 * or 0 when the checks pass. */
static int
failure_line(const capsule_shim *shim, char *line, size_t size)
{
    char why[1024];
    const char *refused = capsule_shim_refused(shim, why, sizeof why);

    if (refused) {
        capsule_shim_line(line, size, shim && shim->soname ? shim
                                      : &(capsule_shim){ .soname = "(unknown shim)" },
                          NULL, refused);
        return 1;
    }
    const char *prefix = capsule_shim_prefix(shim);
    char *real = capsule_shim_canonical_prefix(prefix);
    if (!real) {
        capsule_shim_line(line, size, shim, prefix, capsule_error());
        return 1;
    }
    int failed = check_prefix(shim, real) != 0;
    if (failed)
        capsule_shim_line(line, size, shim, real, capsule_error());
    free(real);
    return failed;
}

/* Instrumented (sanitizers) and run only once the checks below passed. */
static __attribute__((noinline)) void
preflight(capsule_shim *shim)
{
    char line[2048];

    capsule_debug_init();
    double t0 = capsule_debug_now_us();
    int failed = failure_line(shim, line, sizeof line);
    capsule_debug(CAPSULE_DEBUG_TIME, "%s: preflight %.0f us",
                  shim && shim->soname ? shim->soname : "(unknown shim)",
                  capsule_debug_now_us() - t0);
    if (!failed)
        return;
    line[strcspn(line, "\n")] = '\0';
    signal_error_fn signal_error =
        (signal_error_fn)(void (*)(void))dlvsym(RTLD_DEFAULT, "_dl_signal_error",
                                                "GLIBC_PRIVATE");
    if (!signal_error) {
        /* The constructor prints the line and exits, as without preflight. */
        capsule_debug(CAPSULE_DEBUG_PATH, "preflight: no _dl_signal_error in ld.so to fail "
                      "the dlopen with: %s", line);
        return;
    }
    /* Once, under `ns` when traced (capsule-shim ldd reads it there). */
    if (capsule_debug_flags & (CAPSULE_DEBUG_NS | CAPSULE_DEBUG_PATH))
        capsule_debug_print(capsule_debug_flags & CAPSULE_DEBUG_NS ? CAPSULE_DEBUG_NS
                                                                    : CAPSULE_DEBUG_PATH,
                            "preflight: the dlopen fails: %s", line);
    signal_error(0, "", NULL, line); /* copies line */
}

/* Uninstrumented: this much runs before a sanitizer's run time may be set
 * up (a dlopen from a preinit function). */
__attribute__((no_sanitize("address", "undefined"))) void
capsule_shim_preflight(capsule_shim *shim)
{
    extern char **environ;

    /* The shim checks environ first; libcapsule checks again for callers
     * that do not. A program that cleared its environment (clearenv(),
     * environ = NULL) keeps the constructor's line and exit 127. */
    if (!environ || capsule_static_program())
        return;
    preflight(shim);
}
