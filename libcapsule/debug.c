#define _GNU_SOURCE
#include "debug.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned capsule_debug_flags;

static const struct {
    const char *name;
    unsigned flag;
} topics[] = {
    { "path", CAPSULE_DEBUG_PATH },
    { "search", CAPSULE_DEBUG_SEARCH },
    { "ldcache", CAPSULE_DEBUG_LDCACHE },
    { "reloc", CAPSULE_DEBUG_RELOC },
    { "ns", CAPSULE_DEBUG_NS },
    { "time", CAPSULE_DEBUG_TIME },
    { "cache", CAPSULE_DEBUG_CACHE },
    { "all", ~0u },
};

unsigned
capsule_debug_parse(const char *spec)
{
    unsigned flags = 0;

    while (spec && *spec) {
        size_t len = strcspn(spec, ", ");
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            if (strlen(topics[i].name) == len && strncmp(spec, topics[i].name, len) == 0)
                flags |= topics[i].flag;
        }
        spec += len;
        spec += strspn(spec, ", ");
    }
    return flags;
}

static void
debug_init_once(void)
{
    capsule_debug_flags = capsule_debug_parse(secure_getenv("CAPSULE_DEBUG"));
}

void
capsule_debug_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, debug_init_once);
}

static const char *
topic_name(unsigned topic)
{
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        if (topics[i].flag == topic)
            return topics[i].name;
    }
    return "debug";
}

void
capsule_debug_print(unsigned topic, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    /* One write per line so lines from several threads do not interleave. */
    n = snprintf(line, sizeof line, "capsule[%s]: ", topic_name(topic));
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    capsule_one_line(line);
    if (write(STDERR_FILENO, line, strlen(line)) < 0)
        return;
}

double
capsule_debug_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}
