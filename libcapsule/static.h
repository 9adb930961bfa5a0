/* Statically linked programs (-static, -static-pie) cannot use capsules. */
#ifndef CAPSULE_STATIC_H
#define CAPSULE_STATIC_H

#include "error.h"

/* When the process is a statically linked program, says so in one
 * capsule: line naming the shim and ends the process with status 127, as
 * ld.so ends a program whose libraries cannot load. Returns otherwise.
 *
 * Such a program's dlopen() brings a second glibc (libc.so.6 and a copy of
 * ld.so that never ran: its _r_debug is empty), whose thread-local storage
 * for objects it loads is not set up: libcapsule's first thread-local
 * access faults (the SIGSEGV it used to end with), and nothing in
 * dlmopen's namespaces works. Making that dlopen() fail is not possible
 * from a constructor: glibc fails a dlopen by unwinding to the catch its
 * dlopen set, which a static program keeps in its own copy of the loader
 * (libc.a: it exports nothing), while the shared copy's _dl_signal_error
 * finds no catch and faults in turn. Touches no thread-local data. */
CAPSULE_HIDDEN void capsule_refuse_static(const char *soname);
/* 1 in a statically linked program (see above). */
CAPSULE_HIDDEN int capsule_static_program(void);

#endif
