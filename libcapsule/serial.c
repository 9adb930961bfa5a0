/* One set-up at a time, under ld.so's load lock (see serial.h).
 *
 * The runner object: an ELF image made in memory once per process, with no
 * symbols, no code and one DT_INIT_ARRAY entry, the absolute address of
 * run_pending() (ld.so calls init_array entries as they are: only a
 * relocation would add the load base, and there is none). dlopen() takes
 * the load lock and calls run_pending() under it, which runs the pending
 * set-up of the calling thread; dlclose() unloads it again, so the next
 * dlopen runs it again. Should the runner not load (memfd refused, no
 * temporary directory), the set-up runs directly, as before. */
#define _GNU_SOURCE
#include "serial.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bridge.h"
#include "debug.h"

#define N_DYN 10 /* capsule_image_dynamic's six, init array and size, DT_NULLs */

/* The pending set-up of this thread, and how deep in set-ups it is. */
static __thread struct {
    void (*fn)(void *);
    void *arg;
    int depth;
} pending;

static void
run_pending(int argc, char **argv, char **env)
{
    (void)argc, (void)argv, (void)env;
    if (pending.fn) {
        void (*fn)(void *) = pending.fn;
        pending.fn = NULL;
        fn(pending.arg);
    }
}

static int runner_fd = -1; /* the image, open for the process's life */
static pthread_once_t runner_once = PTHREAD_ONCE_INIT;

static size_t
align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static unsigned char *
runner_image(size_t *size)
{
    const char soname[] = "libcapsule-runner.so";
    size_t sym = align_up(sizeof(ElfW(Ehdr)) + CAPSULE_IMAGE_PHDRS * sizeof(ElfW(Phdr)), 8);
    size_t hash = sym + sizeof(ElfW(Sym));       /* the null symbol only */
    size_t str = hash + 16 + sizeof(ElfW(Addr)) + 4; /* one bloom word, one bucket */
    size_t text_end = str + 1 + sizeof soname;
    size_t dyn = align_up(text_end, CAPSULE_IMAGE_DYN_ALIGN);
    size_t array = dyn + N_DYN * sizeof(ElfW(Dyn));
    size_t total = array + sizeof(ElfW(Addr));
    unsigned char *img = calloc(1, total);

    if (!img)
        return NULL;
    capsule_image_headers(img, dyn, total, PF_R);
    uint32_t *gh = (uint32_t *)(img + hash);
    gh[0] = 1, gh[1] = 1, gh[2] = 1, gh[3] = 6; /* nbuckets, symoffset, bloom words, shift */
    memcpy(img + str + 1, soname, sizeof soname);
    ElfW(Dyn) *d =
        capsule_image_dynamic(img, dyn, DT_GNU_HASH, hash, str, sym, 1 + sizeof soname, 1);
    *d++ = (ElfW(Dyn)){ .d_tag = DT_INIT_ARRAY, .d_un.d_ptr = array };
    *d = (ElfW(Dyn)){ .d_tag = DT_INIT_ARRAYSZ, .d_un.d_val = sizeof(ElfW(Addr)) };
    ElfW(Addr) fn = (ElfW(Addr))run_pending;
    memcpy(img + array, &fn, sizeof fn);
    *size = total;
    return img;
}

static void
make_runner(void)
{
    size_t size = 0;
    unsigned char *img = runner_image(&size);
    int fd = img ? memfd_create("capsule-runner", MFD_CLOEXEC | MFD_ALLOW_SEALING) : -1;

    for (size_t off = 0; fd >= 0 && off < size;) {
        ssize_t w = write(fd, img + off, size - off);
        if (w <= 0 && errno != EINTR) {
            close(fd);
            fd = -1;
        } else if (w > 0) {
            off += (size_t)w;
        }
    }
    if (fd >= 0)
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    free(img);
    runner_fd = fd;
}

void
capsule_serial_run(void (*fn)(void *), void *arg)
{
    char path[64];
    void *h = NULL;

    pthread_once(&runner_once, make_runner);
    if (pending.depth++ == 0 && runner_fd >= 0) {
        pending.fn = fn, pending.arg = arg;
        snprintf(path, sizeof path, "/proc/self/fd/%d", runner_fd);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            capsule_debug(CAPSULE_DEBUG_NS, "the set-up runner did not load (%s): set-up "
                          "runs without ld.so's lock", dlerror());
    }
    if (pending.fn) { /* nested, or no runner: run it here */
        pending.fn = NULL;
        fn(arg);
    }
    if (h)
        dlclose(h);
    pending.depth--;
}
