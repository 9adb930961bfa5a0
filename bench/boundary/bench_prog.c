/* bench_prog calls N | dlopen N PATH | malloc N: prints nanoseconds per
 * operation. Linked against libbench.so.1 (real or shim at run time). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int bench_add(int a, int b);
long bench_malloc_free(long n, size_t size);

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 0;
    double t0 = now_ns();
    int acc = 0;

    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "calls") == 0) {
        for (long i = 0; i < n; i++)
            acc = bench_add(acc, (int)i);
    } else if (strcmp(argv[1], "dlopen") == 0 && argc > 3) {
        for (long i = 0; i < n; i++) {
            void *h = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
            if (!h)
                return 1;
            dlclose(h);
        }
    } else if (strcmp(argv[1], "malloc") == 0) {
        acc = (int)bench_malloc_free(n, 64);
    } else {
        return 2;
    }
    printf("%.3f\n", (now_ns() - t0) / (double)n);
    return acc == 12345 ? 3 : 0;
}
