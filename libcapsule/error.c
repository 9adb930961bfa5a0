#include "error.h"

#include <stdarg.h>
#include <stdio.h>
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
