/* Errors: functions return 0 / -1 and leave a message in a thread-local
 * buffer the caller reads with capsule_error(). */
#ifndef CAPSULE_ERROR_H
#define CAPSULE_ERROR_H

#define CAPSULE_HIDDEN __attribute__((visibility("hidden")))

CAPSULE_HIDDEN __attribute__((format(printf, 1, 2))) int capsule_error_set(const char *fmt, ...);
CAPSULE_HIDDEN const char *capsule_error(void);
/* Replaces control characters (names from the prefix or the environment may
 * hold any byte) so a message stays one line; a final newline is kept. */
CAPSULE_HIDDEN void capsule_one_line(char *line);

#include <stddef.h>
/* Makes room for element n of *array (elements of `size` bytes, *cap of
 * them allocated), doubling it; on failure *array is left as it was. */
CAPSULE_HIDDEN int capsule_grow(void **array, size_t *cap, size_t n, size_t size);

#endif
