/* Architecture preamble: every ELF type and relocation name the runtime uses.
 * Porting libcapsule starts (and should end) here. */
#ifndef CAPSULE_ELFARCH_H
#define CAPSULE_ELFARCH_H

#include <elf.h>
#include <link.h>

#if defined(__x86_64__) && !defined(__ILP32__)
#define CAPSULE_ELFCLASS ELFCLASS64
#define CAPSULE_ELFDATA ELFDATA2LSB
#define CAPSULE_MACHINE EM_X86_64
#define CAPSULE_MACHINE_NAME "x86_64"
#define CAPSULE_LIB_DIR "lib/x86_64-linux-gnu" /* what $LIB expands to */
#define CAPSULE_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define CAPSULE_R_GLOB_DAT R_X86_64_GLOB_DAT
#define CAPSULE_R_ABS R_X86_64_64
#define CAPSULE_R_COPY R_X86_64_COPY
#define CAPSULE_DT_PLTREL_WANTED DT_RELA
/* ld.so.cache entry flags for this architecture (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64). */
#define CAPSULE_LDCACHE_FLAGS 0x0303
typedef ElfW(Rela) capsule_rel;
#define CAPSULE_REL_SYM(info) ELF64_R_SYM(info)
#define CAPSULE_REL_TYPE(info) ELF64_R_TYPE(info)
/* PLT entries ld.so may rewrite into direct branches (glibc 2.40+,
 * glibc.cpu.plt_rewrite; pltrewrite_x86_64.c): the dynamic tags of an object
 * linked -z mark-plt (DT_X86_64_PLT, DT_X86_64_PLTSZ, DT_X86_64_PLTENT). An
 * architecture without such a rewrite defines none of them. */
#define CAPSULE_DT_PLT 0x70000000
#define CAPSULE_DT_PLTSZ 0x70000001
#define CAPSULE_DT_PLTENT 0x70000003
#else
#error "libcapsule is implemented for x86_64 only: add this architecture to elfarch.h"
#endif

#endif
