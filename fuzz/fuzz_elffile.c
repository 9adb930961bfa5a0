/* libFuzzer harness: libcapsule's reader of ELF headers and dynamic sections
 * in files under the prefix (class, machine, DT_NEEDED, DT_SONAME, DT_RPATH,
 * DT_RUNPATH). Either a result whose strings are all readable, or an error. */
#define _GNU_SOURCE
#include <string.h>

#include "elffile.h"
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    capsule_elffile elf;
    int rc = capsule_elffile_read(fuzz_file(data, size), &elf);

    if (rc != CAPSULE_ELF_OK) {
        if (rc != CAPSULE_ELF_BAD && rc != CAPSULE_ELF_WRONG_ARCH)
            abort(); /* the file exists: it cannot be "missing" */
        if (!capsule_error()[0])
            abort();
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < elf.n_needed; i++)
        total += strlen(elf.needed[i]);
    if (elf.needed[elf.n_needed] != NULL)
        abort();
    total += elf.soname ? strlen(elf.soname) : 0;
    total += elf.rpath ? strlen(elf.rpath) : 0;
    total += elf.runpath ? strlen(elf.runpath) : 0;
    if (total > size)
        abort(); /* every string is a piece of the file */
    capsule_elffile_free(&elf);
    return 0;
}
