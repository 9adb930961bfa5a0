/* Times one dlopen(argv[1], RTLD_NOW) in microseconds: for a shim this is
 * libcapsule's whole start-up (resolve, namespace load, relocation pass). */
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    struct timespec a, b;

    if (argc != 2)
        return 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    void *handle = dlopen(argv[1], RTLD_NOW);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!handle) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    printf("%.1f\n", (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3);
    return 0;
}
