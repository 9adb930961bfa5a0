/* One set-up at a time, under ld.so's own load lock.
 *
 * A shim initialises from its constructor, either inside the dlopen that
 * loaded it (ld.so holds its load lock) or at start-up (no lock), and the
 * set-up calls into ld.so (dlmopen, dlopen). A libcapsule lock held across
 * those calls deadlocks against a thread that is inside a dlopen (holding
 * the load lock) and waits for that libcapsule lock. So no libcapsule lock
 * serialises set-ups: ld.so's load lock does. At start-up libcapsule takes
 * it the only way ld.so offers, by dlopen()ing a tiny in-memory object whose
 * constructor runs the set-up; inside a dlopen it is held already. */
#ifndef CAPSULE_SERIAL_H
#define CAPSULE_SERIAL_H

#include "error.h"

/* Runs fn(arg) holding ld.so's load lock: no other thread is in dlopen,
 * dlclose or another set-up meanwhile. Nested calls run fn directly. */
CAPSULE_HIDDEN void capsule_serial_run(void (*fn)(void *), void *arg);

#endif
