#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_buffer[1024];

int
capsule_error_set(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(error_buffer, sizeof error_buffer, fmt, ap);
    va_end(ap);
    return -1;
}

const char *
capsule_error(void)
{
    return error_buffer[0] ? error_buffer : "unknown error";
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
