/* x86-64 (LP64): the facts elfarch.h promises every other file. Reached
 * through -Ilibcapsule/arch/x86_64; the machine code of this architecture
 * lives next to it (bridge_code.c, trampoline.c, datadirs_entry.c,
 * pltrewrite.c). */
#ifndef CAPSULE_ARCH_H
#define CAPSULE_ARCH_H

#if !defined(__x86_64__) || defined(__ILP32__)
#error "libcapsule/arch/x86_64 is for x86-64 (LP64) builds"
#endif

#define CAPSULE_ELFCLASS ELFCLASS64
#define CAPSULE_ELFDATA ELFDATA2LSB
#define CAPSULE_MACHINE EM_X86_64
#define CAPSULE_MACHINE_NAME "x86_64"
#define CAPSULE_TRIPLET "x86_64-linux-gnu"
#define CAPSULE_LIB_DIR "lib/x86_64-linux-gnu" /* what $LIB expands to */
#define CAPSULE_PLATFORM "x86_64"              /* what $PLATFORM expands to */
#define CAPSULE_LDSO_SONAME "ld-linux-x86-64.so.2"
/* The word-size directories ld.so searches after the multiarch ones. */
#define CAPSULE_WORD_DIRS "/lib64", "/usr/lib64"
/* The oldest symbol version of this architecture's glibc. */
#define CAPSULE_GLIBC_BASE_VERSION "GLIBC_2.2.5"

/* Relocations: RELA, the addend in the entry. */
#define CAPSULE_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define CAPSULE_R_GLOB_DAT R_X86_64_GLOB_DAT
#define CAPSULE_R_ABS R_X86_64_64
#define CAPSULE_R_ABS_NAME "64"
#define CAPSULE_R_COPY R_X86_64_COPY
#define CAPSULE_DT_REL DT_RELA
#define CAPSULE_DT_RELSZ DT_RELASZ
#define CAPSULE_DT_RELENT DT_RELAENT
#define CAPSULE_REL_ADDEND_IN_SLOT 0
typedef ElfW(Rela) capsule_rel;
#define CAPSULE_REL_SYM(info) ELF64_R_SYM(info)
#define CAPSULE_REL_TYPE(info) ELF64_R_TYPE(info)
#define CAPSULE_REL_ADDEND(r) ((ElfW(Addr))(r)->r_addend)

/* ld.so.cache entry flags ld.so accepts (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64). */
#define CAPSULE_LDCACHE_FLAGS 0x0303 /* what ldconfig gives a library linking libc */
#define CAPSULE_LDCACHE_FLAGS_OK(f) ((f) == CAPSULE_LDCACHE_FLAGS)

/* The smallest page the in-memory objects are laid out for. */
#define CAPSULE_IMAGE_PAGE 4096

/* PLT entries ld.so may rewrite into direct branches (glibc 2.40+,
 * glibc.cpu.plt_rewrite; pltrewrite.c): the dynamic tags of an object
 * linked -z mark-plt (DT_X86_64_PLT, DT_X86_64_PLTSZ, DT_X86_64_PLTENT). An
 * architecture without such a rewrite defines none of them. */
#define CAPSULE_DT_PLT 0x70000000
#define CAPSULE_DT_PLTSZ 0x70000001
#define CAPSULE_DT_PLTENT 0x70000003

#endif
