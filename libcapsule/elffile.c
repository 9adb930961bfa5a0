#define _GNU_SOURCE
#include "elffile.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elfarch.h"
#include "mapfile.h"

/* Large enough for any real library (libLLVM is ~100 MiB). */
#define MAX_SIZE ((size_t)1 << 32)

typedef struct {
    const unsigned char *map;
    size_t size;
    const ElfW(Phdr) *phdr;
    size_t phnum;
} image;

static int
check_header(const image *im, const char *path)
{
    const unsigned char *id = im->map;
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
    memcpy(&eh, im->map, sizeof eh);
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

static char *
dyn_string(const image *im, size_t strtab, size_t strsz, uint64_t index)
{
    if (index >= strsz)
        return NULL;
    const char *s = (const char *)im->map + strtab + index;
    size_t max = strsz - (size_t)index;
    size_t len = strnlen(s, max);
    return len < max ? strndup(s, len) : NULL;
}

static int
read_dynamic(const image *im, const char *path, capsule_elffile *out)
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

    const ElfW(Dyn) *d = (const ElfW(Dyn) *)(im->map + dyn->p_offset);
    size_t n = dyn->p_filesz / sizeof *d, n_needed = 0;
    uint64_t strtab = 0, strsz = 0;
    int have_strtab = 0;
    for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
        if (d[i].d_tag == DT_STRTAB)
            strtab = d[i].d_un.d_ptr, have_strtab = 1;
        else if (d[i].d_tag == DT_STRSZ)
            strsz = d[i].d_un.d_val;
        else if (d[i].d_tag == DT_NEEDED)
            n_needed++;
    }
    size_t stroff = 0;
    if (!have_strtab || vaddr_to_offset(im, strtab, strsz, &stroff) != 0)
        return capsule_error_set("%s: bad dynamic string table", path), CAPSULE_ELF_BAD;

    out->needed = calloc(n_needed + 1, sizeof *out->needed);
    if (!out->needed)
        return capsule_error_set("out of memory"), CAPSULE_ELF_BAD;
    for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
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
            return capsule_error_set("%s: bad string in dynamic section", path), CAPSULE_ELF_BAD;
    }
    return CAPSULE_ELF_OK;
}

int
capsule_elffile_read(const char *path, capsule_elffile *out)
{
    image im;
    int r;

    memset(out, 0, sizeof *out);
    memset(&im, 0, sizeof im);
    r = capsule_map_file(path, MAX_SIZE, &im.map, &im.size);
    if (r == 1)
        return capsule_error_set("%s: %s", path, strerror(ENOENT)), CAPSULE_ELF_MISSING;
    if (r != 0)
        return CAPSULE_ELF_BAD;
    r = check_header(&im, path);
    if (r == CAPSULE_ELF_OK) {
        ElfW(Ehdr) eh;
        memcpy(&eh, im.map, sizeof eh);
        im.phdr = (const ElfW(Phdr) *)(im.map + eh.e_phoff);
        im.phnum = eh.e_phnum;
        r = read_dynamic(&im, path, out);
    }
    capsule_unmap_file(im.map, im.size);
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
    free(f->soname);
    free(f->rpath);
    free(f->runpath);
    memset(f, 0, sizeof *f);
}
