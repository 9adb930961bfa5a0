/* CAPSULE_DEBUG tracing: a comma-separated list of topics (or "all"). */
#ifndef CAPSULE_DEBUG_H
#define CAPSULE_DEBUG_H

#include "error.h"

enum capsule_debug_topic {
    CAPSULE_DEBUG_PATH = 1u << 0,
    CAPSULE_DEBUG_SEARCH = 1u << 1,
    CAPSULE_DEBUG_LDCACHE = 1u << 2,
    CAPSULE_DEBUG_RELOC = 1u << 3,
    CAPSULE_DEBUG_NS = 1u << 4,
    CAPSULE_DEBUG_TIME = 1u << 5,
    CAPSULE_DEBUG_CACHE = 1u << 6,
};

CAPSULE_HIDDEN extern unsigned capsule_debug_flags;

/* Parses CAPSULE_DEBUG once; unknown topics are ignored. */
CAPSULE_HIDDEN void capsule_debug_init(void);
CAPSULE_HIDDEN unsigned capsule_debug_parse(const char *spec);
CAPSULE_HIDDEN __attribute__((format(printf, 2, 3))) void
capsule_debug_print(unsigned topic, const char *fmt, ...);

#define capsule_debug(topic, ...)                                                                  \
    do {                                                                                           \
        if (capsule_debug_flags & (topic))                                                         \
            capsule_debug_print((topic), __VA_ARGS__);                                             \
    } while (0)

/* Microseconds on the monotonic clock, for the `time` topic. */
CAPSULE_HIDDEN double capsule_debug_now_us(void);

#endif
