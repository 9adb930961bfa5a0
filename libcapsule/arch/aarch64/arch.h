/* aarch64 (LP64): the facts elfarch.h promises every other file. Reached
 * through -Ilibcapsule/arch/aarch64; the machine code of this architecture
 * lives next to it (bridge_code.c, trampoline.c, datadirs_entry.c). Every
 * entry point written here starts with `bti c`, so a BTI CPU runs it when
 * the objects around it are BTI-marked. */
#ifndef CAPSULE_ARCH_H
#define CAPSULE_ARCH_H

#if !defined(__aarch64__) || defined(__ILP32__)
#error "libcapsule/arch/aarch64 is for aarch64 (LP64) builds"
#endif

#define CAPSULE_ELFCLASS ELFCLASS64
#define CAPSULE_ELFDATA ELFDATA2LSB
#define CAPSULE_MACHINE EM_AARCH64
#define CAPSULE_MACHINE_NAME "aarch64"
#define CAPSULE_TRIPLET "aarch64-linux-gnu"
#define CAPSULE_LIB_DIR "lib/aarch64-linux-gnu" /* what $LIB expands to */
#define CAPSULE_PLATFORM "aarch64"              /* what $PLATFORM expands to */
#define CAPSULE_LDSO_SONAME "ld-linux-aarch64.so.1"
/* The word-size directories ld.so searches after the multiarch ones. */
#define CAPSULE_WORD_DIRS "/lib64", "/usr/lib64"
/* The oldest symbol version of this architecture's glibc. */
#define CAPSULE_GLIBC_BASE_VERSION "GLIBC_2.17"

/* Relocations: RELA, the addend in the entry. */
#define CAPSULE_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define CAPSULE_R_GLOB_DAT R_AARCH64_GLOB_DAT
#define CAPSULE_R_ABS R_AARCH64_ABS64
#define CAPSULE_R_ABS_NAME "ABS64"
#define CAPSULE_R_COPY R_AARCH64_COPY
#define CAPSULE_DT_REL DT_RELA
#define CAPSULE_DT_RELSZ DT_RELASZ
#define CAPSULE_DT_RELENT DT_RELAENT
#define CAPSULE_REL_ADDEND_IN_SLOT 0
typedef ElfW(Rela) capsule_rel;
#define CAPSULE_REL_SYM(info) ELF64_R_SYM(info)
#define CAPSULE_REL_TYPE(info) ELF64_R_TYPE(info)
#define CAPSULE_REL_ADDEND(r) ((ElfW(Addr))(r)->r_addend)

/* ld.so.cache entry flags ld.so accepts (FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64). */
#define CAPSULE_LDCACHE_FLAGS 0x0a03 /* what ldconfig gives a library linking libc */
#define CAPSULE_LDCACHE_FLAGS_OK(f) ((f) == CAPSULE_LDCACHE_FLAGS)

/* The largest page an aarch64 kernel may use: in-memory objects are laid
 * out so that they load under 4, 16 and 64 KiB pages. */
#define CAPSULE_IMAGE_PAGE 65536

#endif
