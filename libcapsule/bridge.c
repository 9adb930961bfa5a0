/* The bridge object (see bridge.h): an ELF shared object made in memory.
 *
 * Layout: one read+execute segment (ELF header, program headers, .dynsym,
 * GNU hash, .dynstr, the jump stubs, one unexported call stub) and one
 * read+write page holding the dynamic section (ld.so may rewrite its
 * pointers in place). No section headers, no relocations, no DT_NEEDED:
 * loading it runs no code at all. */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"
#include "dynobj.h"
#include "elfarch.h"

#define BRIDGE_SONAME "libcapsule-bridge.so"
#define STUB_SIZE CAPSULE_BRIDGE_STUB_SIZE
#define N_DYN 8 /* capsule_image_dynamic's six, DT_NULL and a spare */
#define BLOOM_WORDS 4
#define BLOOM_SHIFT 6

static size_t
align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

typedef struct {
    size_t sym, hash, str, code, iterate, text_end, dyn, total, strsz, nbuckets;
} layout;

static layout
plan(const capsule_bridge_entry *entries, size_t n)
{
    layout l;
    size_t strsz = 1 + sizeof BRIDGE_SONAME;

    for (size_t i = 0; i < n; i++)
        strsz += strlen(entries[i].name) + 1;
    l.strsz = strsz;
    l.nbuckets = n ? n : 1;
    l.sym = align_up(sizeof(ElfW(Ehdr)) + CAPSULE_IMAGE_PHDRS * sizeof(ElfW(Phdr)), 8);
    l.hash = l.sym + (n + 1) * sizeof(ElfW(Sym));
    l.str = l.hash + 16 + BLOOM_WORDS * sizeof(ElfW(Addr)) + (l.nbuckets + n) * 4;
    l.code = align_up(l.str + strsz, 16);
    l.iterate = l.code + n * STUB_SIZE;
    l.text_end = l.iterate + STUB_SIZE;
    l.dyn = align_up(l.text_end, CAPSULE_IMAGE_DYN_ALIGN);
    l.total = l.dyn + N_DYN * sizeof(ElfW(Dyn));
    return l;
}

void
capsule_image_headers(unsigned char *img, size_t dyn, size_t total, unsigned flags)
{
    ElfW(Ehdr) *eh = (ElfW(Ehdr) *)img;
    ElfW(Phdr) *ph = (ElfW(Phdr) *)(img + sizeof *eh);

    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = CAPSULE_ELFCLASS;
    eh->e_ident[EI_DATA] = CAPSULE_ELFDATA;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_DYN;
    eh->e_machine = CAPSULE_MACHINE;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof *eh;
    eh->e_ehsize = sizeof *eh;
    eh->e_phentsize = sizeof *ph;
    eh->e_phnum = CAPSULE_IMAGE_PHDRS;
    ph[0] = (ElfW(Phdr)){ .p_type = PT_LOAD, .p_flags = flags, .p_offset = 0,
                          .p_vaddr = 0, .p_paddr = 0, .p_filesz = total,
                          .p_memsz = total, .p_align = CAPSULE_IMAGE_PAGE };
    ph[1] = (ElfW(Phdr)){ .p_type = PT_DYNAMIC, .p_flags = PF_R, .p_offset = dyn,
                          .p_vaddr = dyn, .p_paddr = dyn, .p_filesz = total - dyn,
                          .p_memsz = total - dyn, .p_align = 8 };
    ph[2] = (ElfW(Phdr)){ .p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W, .p_align = 16 };
}

void
capsule_image_gnu_hash(uint32_t *gh, size_t n, uint32_t nbuckets, uint32_t bloom_words,
                       uint32_t (*hash_at)(const void *ctx, size_t k), const void *ctx)
{
    /* Bloom words are the ELF class's address size (ld.so reads them so). */
    ElfW(Addr) *bloom = (ElfW(Addr) *)(gh + 4);
    uint32_t *buckets = (uint32_t *)(bloom + bloom_words);
    uint32_t *chain = buckets + nbuckets;
    const unsigned bits = sizeof(ElfW(Addr)) * 8;

    gh[0] = nbuckets, gh[1] = 1, gh[2] = bloom_words, gh[3] = BLOOM_SHIFT;
    for (size_t k = 0; k < n; k++) {
        uint32_t h = hash_at(ctx, k), b = h % nbuckets;
        bloom[(h / bits) % bloom_words] |= ((ElfW(Addr))1 << (h % bits)) |
                                           ((ElfW(Addr))1 << ((h >> BLOOM_SHIFT) % bits));
        if (!buckets[b])
            buckets[b] = (uint32_t)(k + 1);
        int last = k + 1 == n || hash_at(ctx, k + 1) % nbuckets != b;
        chain[k] = (h & ~1u) | (uint32_t)last;
    }
}

typedef struct {
    const capsule_bridge_entry *entries;
    const size_t *order;
} in_order;

static uint32_t
entry_hash(const void *ctx, size_t k)
{
    const in_order *o = ctx;
    return capsule_gnu_hash(o->entries[o->order[k]].name);
}

/* Symbols sorted by GNU hash bucket, as the table requires. */
static void
write_symbols(unsigned char *img, const layout *l, const capsule_bridge_entry *entries,
              size_t n, const size_t *order)
{
    ElfW(Sym) *sym = (ElfW(Sym) *)(img + l->sym);
    char *str = (char *)img + l->str;
    size_t s = 1 + sizeof BRIDGE_SONAME;

    memcpy(str + 1, BRIDGE_SONAME, sizeof BRIDGE_SONAME);
    for (size_t k = 0; k < n; k++) {
        const capsule_bridge_entry *e = &entries[order[k]];
        size_t len = strlen(e->name) + 1;
        ElfW(Sym) *y = &sym[k + 1];

        memcpy(str + s, e->name, len);
        y->st_name = (uint32_t)s;
        y->st_info = ELFW(ST_INFO)(STB_GLOBAL, STT_FUNC);
        y->st_shndx = 1;
        y->st_value = l->code + order[k] * STUB_SIZE;
        y->st_size = STUB_SIZE;
        s += len;
    }
    capsule_image_gnu_hash((uint32_t *)(img + l->hash), n, (uint32_t)l->nbuckets, BLOOM_WORDS,
                           entry_hash, &(in_order){ entries, order });
}

ElfW(Dyn) *
capsule_image_dynamic(unsigned char *img, size_t dyn, ElfW(Sxword) hash_tag, size_t hash,
                      size_t str, size_t sym, size_t strsz, size_t soname)
{
    ElfW(Dyn) *d = (ElfW(Dyn) *)(img + dyn);

    *d++ = (ElfW(Dyn)){ .d_tag = hash_tag, .d_un.d_ptr = hash };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_STRTAB, .d_un.d_ptr = str };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_SYMTAB, .d_un.d_ptr = sym };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_STRSZ, .d_un.d_val = strsz };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_SYMENT, .d_un.d_val = sizeof(ElfW(Sym)) };
    *d++ = (ElfW(Dyn)){ .d_tag = DT_SONAME, .d_un.d_val = soname };
    return d;
}

typedef struct {
    const capsule_bridge_entry *entries;
    uint32_t nbuckets;
} sort_ctx;

static int
by_bucket(const void *a, const void *b, void *data)
{
    const sort_ctx *c = data;
    uint32_t x = capsule_gnu_hash(c->entries[*(const size_t *)a].name) % c->nbuckets;
    uint32_t y = capsule_gnu_hash(c->entries[*(const size_t *)b].name) % c->nbuckets;
    return x < y ? -1 : x > y;
}

static unsigned char *
build_image(const capsule_bridge_entry *entries, size_t n, layout *out)
{
    layout l = plan(entries, n);
    unsigned char *img = calloc(1, l.total);
    size_t *order = calloc(n ? n : 1, sizeof *order);

    if (!img || !order) {
        free(img);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_ctx ctx = { entries, (uint32_t)l.nbuckets };
    qsort_r(order, n, sizeof *order, by_bucket, &ctx);
    capsule_image_headers(img, l.dyn, l.total, PF_R | PF_X);
    write_symbols(img, &l, entries, n, order);
    for (size_t i = 0; i < n; i++)
        capsule_arch_jump_stub(img + l.code + i * STUB_SIZE, entries[i].target, entries[i].context);
    capsule_arch_call_stub(img + l.iterate, (const void *)dl_iterate_phdr);
    capsule_image_dynamic(img, l.dyn, DT_GNU_HASH, l.hash, l.str, l.sym, l.strsz, 1);
    free(order);
    *out = l;
    return img;
}

static int
write_all(int fd, const unsigned char *img, size_t size)
{
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, img + off, size - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* The image in a memfd, or (memfd missing, or its mappings not executable
 * under the system's policy) in an unlinked file of a temporary directory. */
static int
image_fd(const unsigned char *img, size_t size, int use_memfd)
{
    const char *dir = secure_getenv("TMPDIR");
    char tmpl[512];
    int fd = use_memfd ? memfd_create("capsule-image", MFD_CLOEXEC) : -1;

    if (fd < 0) {
        snprintf(tmpl, sizeof tmpl, "%s/capsule-bridge-XXXXXX", dir && dir[0] ? dir : "/tmp");
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0)
            return capsule_error_set("cannot create the bridge object in %s: %s", tmpl,
                                     strerror(errno));
        unlink(tmpl);
    }
    if (write_all(fd, img, size) != 0) {
        close(fd);
        return capsule_error_set("cannot write the bridge object: %s", strerror(errno));
    }
    return fd;
}

void
capsule_image_name(int fd, char *path, size_t size)
{
    snprintf(path, size, "/proc/%ld/fd/%d", (long)getpid(), fd);
}

/* A name no object of the namespace has yet: ld.so matches a new path
 * against the names of loaded objects before opening it, and an earlier
 * image loaded through the same (since closed) descriptor number keeps its
 * name. */
static int
fresh_name(int fd, Lmid_t lmid, char *path, size_t size)
{
    for (int tries = 0; tries < 64; tries++) {
        capsule_image_name(fd, path, size);
        if (lmid == LM_ID_NEWLM)
            return fd;
        void *old = dlmopen(lmid, path, RTLD_LAZY | RTLD_NOLOAD);
        if (!old)
            return fd;
        dlclose(old);
        int higher = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
        close(fd);
        if (higher < 0)
            break;
        fd = higher;
    }
    return -1;
}

static void *
load_image(const unsigned char *img, size_t size, int use_memfd, Lmid_t lmid)
{
    char path[64];
    int fd = image_fd(img, size, use_memfd);
    void *handle;

    if (fd < 0)
        return NULL;
    fd = fresh_name(fd, lmid, path, sizeof path);
    if (fd < 0) {
        capsule_error_set("no unused name for an in-memory object");
        return NULL;
    }
    handle = dlmopen(lmid, path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *err = dlerror();
        err = err ? err : "unknown error";
        /* namespace.c explains the namespace limits from this text. */
        capsule_error_set("%s", err);
        close(fd);
    }
    /* Else the descriptor stays open, as the object stays loaded: its name
     * is where a debugger reads it from (capsule_image_name). */
    return handle;
}

void *
capsule_image_load(const unsigned char *img, size_t size, Lmid_t lmid)
{
    void *handle = load_image(img, size, 1, lmid);

    return handle ? handle : load_image(img, size, 0, lmid);
}

void *
capsule_bridge_load(const capsule_bridge_entry *entries, size_t n, Lmid_t *lmid,
                    capsule_iterate_fn *iterate)
{
    layout l;
    unsigned char *img = build_image(entries, n, &l);
    struct link_map *map = NULL;
    void *handle;

    if (!img) {
        capsule_error_set("out of memory");
        return NULL;
    }
    handle = capsule_image_load(img, l.total, LM_ID_NEWLM);
    free(img);
    if (handle && (dlinfo(handle, RTLD_DI_LMID, lmid) != 0 ||
                   dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map))
        handle = NULL, capsule_error_set("dlinfo of the bridge object: %s", dlerror());
    if (!handle)
        return NULL;
    *iterate = (capsule_iterate_fn)(map->l_addr + l.iterate);
    capsule_debug(CAPSULE_DEBUG_NS, "new namespace %ld: bridge with %zu entries", (long)*lmid, n);
    return handle;
}
