/* libbench.so.1: the target the boundary benchmark calls, plainly linked or
 * through its capsule. */
#include <stdlib.h>

__attribute__((noinline)) int
bench_add(int a, int b)
{
    return a + b;
}

/* n malloc/free pairs made from inside the library (inside the capsule
 * when run through it). */
long
bench_malloc_free(long n, size_t size)
{
    long sum = 0;

    for (long i = 0; i < n; i++) {
        char *volatile p = malloc(size + (size_t)(i & 7));
        sum += p != NULL;
        free(p);
    }
    return sum;
}
