#define _GNU_SOURCE
#include "elffile.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfarch.h"
#include "mapfile.h"

/* Large enough for any real library (libLLVM is ~100 MiB). */
#define MAX_SIZE ((size_t)UINT32_MAX)
/* The ELF header and, in every real library, the program headers; in a
 * small library also its strings and version needs, which the first read
 * then brings along (no further pread for them). A file of at most twice
 * this size is read whole, at once. */
#define HEAD_SIZE 16384u
/* Real dynamic sections hold a few dozen entries. */
#define MAX_DYNAMIC ((size_t)1 << 20)
/* Version needs read at most (real libraries have a few dozen). */
#define MAX_VERNEED 4096u
/* Strings and version needs are read through a few blocks of this size,
 * aligned in the file: what lies close together (the DT_NEEDED names, the
 * version needs and their names, mostly within a few KiB of one another,
 * but spread over megabytes in libLLVM) costs one pread per block. Small
 * blocks: 16 KiB ones cost no fewer reads for most files, and left the
 * program's heap laid out so that the Vulkan loader's calloc() landed on
 * recycled memory (vulkaninfo: 0.65 MiB more private dirty at exit). */
#define BLOCK 4096u
#define N_BLOCKS 16u
#define CHUNK 256u

typedef struct {
    size_t off, len; /* len 0: empty */
    unsigned char *buf;
} block;

/* The file is read with pread, only the parts needed: header, program
 * headers, dynamic section, and the few strings it names. */
typedef struct {
    int fd;
    size_t size;                /* of the file */
    unsigned char *head;        /* the first head_len bytes */
    size_t head_len;
    const ElfW(Phdr) *phdr;     /* in head or phdr_buf */
    ElfW(Phdr) *phdr_buf;
    size_t phnum;
    block blocks[N_BLOCKS];
    unsigned next_block;        /* the one refilled next when all are used */
} image;

/* Reads exactly len bytes at off with pread; -1 otherwise. */
static int
pread_all(const image *im, uint64_t off, void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(im->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* an error, or the file shrank under us */
        done += (size_t)n;
    }
    return 0;
}

/* The block holding the aligned BLOCK bytes at start, read now if no
 * block holds them; NULL when it cannot be read. */
static const block *
block_at(image *im, size_t start)
{
    for (unsigned i = 0; i < N_BLOCKS; i++) {
        if (im->blocks[i].len && im->blocks[i].off == start)
            return &im->blocks[i];
    }
    block *b = &im->blocks[im->next_block];
    im->next_block = (im->next_block + 1) % N_BLOCKS;
    if (!b->buf && !(b->buf = malloc(BLOCK)))
        return NULL;
    size_t len = im->size - start < BLOCK ? im->size - start : BLOCK;
    b->len = 0;
    if (pread_all(im, start, b->buf, len) != 0)
        return NULL;
    b->off = start;
    b->len = len;
    return b;
}

/* Reads exactly len bytes at off (inside the file): from the head, from a
 * block when they lie within one, else with one pread; -1 otherwise. */
static int
read_at(image *im, uint64_t off, void *buf, size_t len)
{
    if (off > im->size || len > im->size - off)
        return -1;
    if (im->head_len && off + len <= im->head_len) {
        memcpy(buf, im->head + off, len); /* read with the header already */
        return 0;
    }
    size_t start = (size_t)off - (size_t)off % BLOCK;
    if (im->head_len && len <= BLOCK && off + len <= start + BLOCK) {
        const block *b = block_at(im, start);
        if (!b)
            return -1;
        memcpy(buf, b->buf + (off - start), len);
        return 0;
    }
    return pread_all(im, off, buf, len);
}

static int
check_header(const image *im, const char *path)
{
    const unsigned char *id = im->head;
    ElfW(Ehdr) eh;

    if (im->size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
        return capsule_error_set("%s: not an ELF file", path), CAPSULE_ELF_BAD;
    if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
        return capsule_error_set("%s: bad ELF class %u", path, id[EI_CLASS]), CAPSULE_ELF_BAD;
    if (id[EI_DATA] != ELFDATA2LSB && id[EI_DATA] != ELFDATA2MSB)
        return capsule_error_set("%s: bad ELF byte order %u", path, id[EI_DATA]),
               CAPSULE_ELF_BAD;
    if (id[EI_CLASS] != CAPSULE_ELFCLASS)
        return capsule_error_set("%s: wrong ELF class (%d-bit)", path,
                                 id[EI_CLASS] == ELFCLASS32 ? 32 : 64),
               CAPSULE_ELF_WRONG_ARCH;
    if (id[EI_DATA] != CAPSULE_ELFDATA)
        return capsule_error_set("%s: wrong byte order (%s-endian)", path,
                                 id[EI_DATA] == ELFDATA2MSB ? "big" : "little"),
               CAPSULE_ELF_WRONG_ARCH;
    if (im->size < sizeof eh)
        return capsule_error_set("%s: truncated ELF header", path), CAPSULE_ELF_BAD;
    memcpy(&eh, im->head, sizeof eh);
    if (eh.e_machine != CAPSULE_MACHINE)
        return capsule_error_set("%s: wrong machine (e_machine %u)", path, eh.e_machine),
               CAPSULE_ELF_WRONG_ARCH;
    if (eh.e_type != ET_DYN)
        return capsule_error_set("%s: not a shared object", path), CAPSULE_ELF_BAD;
    if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phoff > im->size ||
        eh.e_phnum > (im->size - eh.e_phoff) / sizeof(ElfW(Phdr)) ||
        eh.e_phoff % _Alignof(ElfW(Phdr)) != 0)
        return capsule_error_set("%s: bad program header table", path), CAPSULE_ELF_BAD;
    return CAPSULE_ELF_OK;
}

/* Program headers from the head already read, or read now. */
static int
read_phdrs(image *im, const char *path)
{
    ElfW(Ehdr) eh;

    memcpy(&eh, im->head, sizeof eh);
    im->phnum = eh.e_phnum;
    size_t len = im->phnum * sizeof(ElfW(Phdr)); /* e_phnum < 65536: no overflow */
    if (eh.e_phoff + len <= im->head_len) {
        im->phdr = (const ElfW(Phdr) *)(im->head + eh.e_phoff); /* aligned: checked */
        return CAPSULE_ELF_OK;
    }
    if (len && !(im->phdr_buf = malloc(len)))
        return capsule_error_set("out of memory"), CAPSULE_ELF_BAD;
    if (len && read_at(im, eh.e_phoff, im->phdr_buf, len) != 0)
        return capsule_error_set("%s: cannot read the program headers", path), CAPSULE_ELF_BAD;
    im->phdr = im->phdr_buf;
    return CAPSULE_ELF_OK;
}

/* File offset of [vaddr, vaddr+len) if one PT_LOAD maps it from the file. */
static int
vaddr_to_offset(const image *im, uint64_t vaddr, uint64_t len, size_t *off)
{
    for (size_t i = 0; i < im->phnum; i++) {
        const ElfW(Phdr) *p = &im->phdr[i];
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr || p->p_offset > im->size ||
            p->p_filesz > im->size - p->p_offset)
            continue;
        uint64_t rel = vaddr - p->p_vaddr;
        if (rel > p->p_filesz || len > p->p_filesz - rel)
            continue;
        *off = (size_t)(p->p_offset + rel);
        return 0;
    }
    return -1;
}

/* The NUL-terminated string at strtab + index, within strsz bytes of the
 * table (which lies inside the file), read piece by piece, each piece
 * within one block. NULL when unterminated or unreadable. */
static char *
dyn_string(image *im, size_t strtab, size_t strsz, uint64_t index)
{
    if (index >= strsz)
        return NULL;
    size_t off = strtab + (size_t)index, max = strsz - (size_t)index;
    char *buf = NULL;
    size_t have = 0;
    while (have < max) {
        size_t want = max - have < CHUNK ? max - have : CHUNK;
        size_t to_block_end = BLOCK - (off + have) % BLOCK;
        want = want < to_block_end ? want : to_block_end;
        char *grown = realloc(buf, have + want + 1);
        if (!grown || read_at(im, off + have, grown + have, want) != 0) {
            free(grown ? grown : buf);
            return NULL;
        }
        buf = grown;
        size_t len = strnlen(buf + have, want);
        if (len < want)
            return buf; /* NUL found: buf holds the string */
        have += want;
    }
    free(buf);
    return NULL;
}

static int
add_verneed(capsule_elffile *out, const char *file, char *version)
{
    capsule_verneed *grown = realloc(out->verneed, (out->n_verneed + 1) * sizeof *grown);
    char *copy = strdup(file);

    if (!grown || !copy) {
        free(copy);
        free(version);
        if (grown)
            out->verneed = grown;
        return -1;
    }
    out->verneed = grown;
    out->verneed[out->n_verneed++] = (capsule_verneed){ copy, version };
    return 0;
}

/* The DT_VERNEED chain: (file, version) for every version needed. */
static int
read_verneed(image *im, const char *path, uint64_t vaddr, uint64_t count, size_t stroff,
             size_t strsz, capsule_elffile *out)
{
    size_t off;
    int rc = CAPSULE_ELF_OK;

    if (!vaddr || !count)
        return CAPSULE_ELF_OK;
    if (vaddr_to_offset(im, vaddr, sizeof(ElfW(Verneed)), &off) != 0)
        return capsule_error_set("%s: bad version needs", path), CAPSULE_ELF_BAD;
    for (uint64_t i = 0; rc == CAPSULE_ELF_OK && i < count; i++) {
        ElfW(Verneed) vn;
        char *file = read_at(im, off, &vn, sizeof vn) == 0
                         ? dyn_string(im, stroff, strsz, vn.vn_file) : NULL;
        if (!file) {
            rc = (capsule_error_set("%s: bad version needs", path), CAPSULE_ELF_BAD);
            break;
        }
        uint64_t aux = (uint64_t)off + vn.vn_aux;
        for (unsigned j = 0; rc == CAPSULE_ELF_OK && j < vn.vn_cnt; j++) {
            ElfW(Vernaux) va;
            char *name = read_at(im, aux, &va, sizeof va) == 0
                             ? dyn_string(im, stroff, strsz, va.vna_name) : NULL;
            if (!name || out->n_verneed >= MAX_VERNEED) {
                free(name);
                rc = (capsule_error_set("%s: bad version needs", path), CAPSULE_ELF_BAD);
            } else if (add_verneed(out, file, name) != 0) {
                rc = (capsule_error_set("out of memory"), CAPSULE_ELF_BAD);
            }
            if (rc != CAPSULE_ELF_OK || !va.vna_next)
                break;
            aux += va.vna_next;
        }
        free(file);
        if (!vn.vn_next)
            break;
        off += vn.vn_next;
    }
    return rc;
}

static int
read_dynamic(image *im, const char *path, capsule_elffile *out)
{
    const ElfW(Phdr) *dyn = NULL;

    for (size_t i = 0; i < im->phnum; i++) {
        if (im->phdr[i].p_type == PT_DYNAMIC)
            dyn = &im->phdr[i];
    }
    if (!dyn)
        return capsule_error_set("%s: no dynamic section", path), CAPSULE_ELF_BAD;
    if (dyn->p_offset > im->size || dyn->p_filesz > im->size - dyn->p_offset ||
        dyn->p_offset % _Alignof(ElfW(Dyn)) != 0)
        return capsule_error_set("%s: dynamic section outside the file", path), CAPSULE_ELF_BAD;
    if (dyn->p_filesz > MAX_DYNAMIC)
        return capsule_error_set("%s: dynamic section too large", path), CAPSULE_ELF_BAD;

    size_t n = dyn->p_filesz / sizeof(ElfW(Dyn)), n_needed = 0;
    ElfW(Dyn) *d = malloc(n ? n * sizeof *d : 1);
    if (!d)
        return capsule_error_set("out of memory"), CAPSULE_ELF_BAD;
    /* Not through a block: nothing else wanted lies near it. */
    int got = dyn->p_offset + n * sizeof *d <= im->head_len
                  ? read_at(im, dyn->p_offset, d, n * sizeof *d)
                  : pread_all(im, dyn->p_offset, d, n * sizeof *d);
    if (got != 0) {
        free(d);
        return capsule_error_set("%s: cannot read the dynamic section", path), CAPSULE_ELF_BAD;
    }
    uint64_t strtab = 0, strsz = 0, verneed = 0, verneednum = 0;
    int have_strtab = 0;
    for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
        if (d[i].d_tag == DT_VERNEED)
            verneed = d[i].d_un.d_ptr;
        else if (d[i].d_tag == DT_VERNEEDNUM)
            verneednum = d[i].d_un.d_val;
        else if (d[i].d_tag == DT_STRTAB)
            strtab = d[i].d_un.d_ptr, have_strtab = 1;
        else if (d[i].d_tag == DT_STRSZ)
            strsz = d[i].d_un.d_val;
        else if (d[i].d_tag == DT_NEEDED)
            n_needed++;
    }
    size_t stroff = 0;
    if (!have_strtab || vaddr_to_offset(im, strtab, strsz, &stroff) != 0) {
        free(d);
        return capsule_error_set("%s: bad dynamic string table", path), CAPSULE_ELF_BAD;
    }

    int rc = CAPSULE_ELF_OK;
    out->needed = calloc(n_needed + 1, sizeof *out->needed);
    if (!out->needed)
        rc = (capsule_error_set("out of memory"), CAPSULE_ELF_BAD);
    for (size_t i = 0; rc == CAPSULE_ELF_OK && i < n && d[i].d_tag != DT_NULL; i++) {
        char **slot = NULL;
        if (d[i].d_tag == DT_NEEDED)
            slot = &out->needed[out->n_needed++];
        else if (d[i].d_tag == DT_SONAME)
            slot = &out->soname;
        else if (d[i].d_tag == DT_RPATH)
            slot = &out->rpath;
        else if (d[i].d_tag == DT_RUNPATH)
            slot = &out->runpath;
        if (!slot)
            continue;
        free(*slot);
        *slot = dyn_string(im, stroff, (size_t)strsz, d[i].d_un.d_val);
        if (!*slot)
            rc = (capsule_error_set("%s: bad string in dynamic section", path), CAPSULE_ELF_BAD);
    }
    free(d);
    if (rc == CAPSULE_ELF_OK)
        rc = read_verneed(im, path, verneed, verneednum, stroff, (size_t)strsz, out);
    return rc;
}

static int read_open(int fd, size_t size, const capsule_stamp *stamp, const char *path,
                     capsule_elffile *out);

int
capsule_elffile_read(const char *path, capsule_elffile *out)
{
    int fd;
    size_t size;
    capsule_stamp stamp;
    int r = capsule_open_file(path, MAX_SIZE, &fd, &size, &stamp);

    if (r != 0) {
        memset(out, 0, sizeof *out);
        if (r == 1)
            return capsule_error_set("%s: %s", path, strerror(ENOENT)), CAPSULE_ELF_MISSING;
        return CAPSULE_ELF_BAD;
    }
    return read_open(fd, size, &stamp, path, out);
}

int
capsule_elffile_read_fd(int fd, const char *path, capsule_elffile *out)
{
    size_t size;
    capsule_stamp stamp;

    if (capsule_check_open_file(fd, path, MAX_SIZE, &size, &stamp) != 0) {
        memset(out, 0, sizeof *out);
        return CAPSULE_ELF_BAD;
    }
    return read_open(fd, size, &stamp, path, out);
}

/* Reads the open file fd of `size` bytes, and closes it. */
static int
read_open(int fd, size_t size, const capsule_stamp *stamp, const char *path,
          capsule_elffile *out)
{
    image *im;
    int r;

    memset(out, 0, sizeof *out);
    out->stamp = *stamp;
    size_t head_len = size <= 2 * HEAD_SIZE ? size : HEAD_SIZE;
    if (!(im = calloc(1, sizeof *im)) || !(im->head = malloc(head_len))) {
        free(im);
        close(fd);
        return capsule_error_set("out of memory"), CAPSULE_ELF_BAD;
    }
    im->fd = fd;
    im->size = size;
    if (pread_all(im, 0, im->head, head_len) != 0) {
        r = (capsule_error_set("%s: cannot read the ELF header", path), CAPSULE_ELF_BAD);
    } else {
        im->head_len = head_len; /* from now on, read_at serves what it holds */
        r = check_header(im, path);
    }
    if (r == CAPSULE_ELF_OK)
        r = read_phdrs(im, path);
    if (r == CAPSULE_ELF_OK)
        r = read_dynamic(im, path, out);
    close(im->fd);
    free(im->phdr_buf);
    free(im->head);
    for (unsigned i = 0; i < N_BLOCKS; i++)
        free(im->blocks[i].buf);
    free(im);
    if (r != CAPSULE_ELF_OK)
        capsule_elffile_free(out);
    return r;
}

void
capsule_elffile_free(capsule_elffile *f)
{
    for (size_t i = 0; f->needed && i < f->n_needed; i++)
        free(f->needed[i]);
    free(f->needed);
    for (size_t i = 0; i < f->n_verneed; i++) {
        free(f->verneed[i].file);
        free(f->verneed[i].version);
    }
    free(f->verneed);
    free(f->soname);
    free(f->rpath);
    free(f->runpath);
    memset(f, 0, sizeof *f);
}
