/* Statically linked programs (see static.h). */
#define _GNU_SOURCE
#include "static.h"

#include <link.h>
#include <string.h>
#include <unistd.h>

static void
put(const char *s)
{
    if (write(STDERR_FILENO, s, strlen(s)) < 0)
        return; /* nothing else to say it with */
}

int
capsule_static_program(void)
{
    /* ld.so fills its _r_debug before any object's constructor runs; the
     * copy a static program's dlopen() loads never started. */
    return __atomic_load_n(&_r_debug.r_version, __ATOMIC_RELAXED) == 0;
}

void
capsule_refuse_static(const char *soname)
{
    if (!capsule_static_program())
        return;
    put("capsule: ");
    put(soname ? soname : "(unknown shim)");
    put(": this program is statically linked (-static or -static-pie), and a static "
        "program cannot use capsules: exiting (its dlopen() cannot be made to fail)\n");
    _exit(127);
}
