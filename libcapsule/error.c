#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_buffer[1024];

/* Until libcapsule's constructors have run, its thread-local block may not
 * exist: a shim's preflight (preflight.c) runs while ld.so relocates the
 * objects of a dlopen, libcapsule among them when that dlopen loads it, and
 * ld.so registers their TLS only after relocation (a thread-local access
 * then faults: checked on 2.36). Only the thread inside that dlopen can run
 * libcapsule's code then (nothing else has its addresses before the dlopen
 * returns; dlsym waits for ld.so's load lock), so one static buffer does. */
static char early_buffer[1024];
static int tls_ready;

__attribute__((constructor)) static void
mark_tls_ready(void)
{
    __atomic_store_n(&tls_ready, 1, __ATOMIC_RELEASE);
}

static char *
buffer(void)
{
    return __atomic_load_n(&tls_ready, __ATOMIC_ACQUIRE) ? error_buffer : early_buffer;
}

int
capsule_error_set(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buffer(), sizeof error_buffer, fmt, ap);
    va_end(ap);
    return -1;
}

const char *
capsule_error(void)
{
    const char *b = buffer();

    return b[0] ? b : "unknown error";
}

void
capsule_one_line(char *line)
{
    size_t len = strlen(line);

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && !(ch == '\n' && i == len - 1)) || ch == 0x7f)
            line[i] = '?';
    }
}

int
capsule_grow(void **array, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    if (c < *cap || c > SIZE_MAX / size)
        return capsule_error_set("out of memory");
    void *p = realloc(*array, c * size);
    if (!p)
        return capsule_error_set("out of memory");
    *array = p;
    *cap = c;
    return 0;
}
