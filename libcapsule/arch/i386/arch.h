/* i386 (ILP32): the facts elfarch.h promises every other file. Reached
 * through -Ilibcapsule/arch/i386; the machine code of this architecture
 * lives next to it (bridge_code.c, trampoline.c, datadirs_entry.c). */
#ifndef CAPSULE_ARCH_H
#define CAPSULE_ARCH_H

#if !defined(__i386__)
#error "libcapsule/arch/i386 is for i386 builds"
#endif

#define CAPSULE_ELFCLASS ELFCLASS32
#define CAPSULE_ELFDATA ELFDATA2LSB
#define CAPSULE_MACHINE EM_386
#define CAPSULE_MACHINE_NAME "i386"
#define CAPSULE_TRIPLET "i386-linux-gnu"
#define CAPSULE_LIB_DIR "lib/i386-linux-gnu" /* what $LIB expands to */
#define CAPSULE_PLATFORM "i686"              /* what $PLATFORM expands to */
#define CAPSULE_LDSO_SONAME "ld-linux.so.2"
/* The word-size directories ld.so searches after the multiarch ones. */
#define CAPSULE_WORD_DIRS "/lib32", "/usr/lib32"
/* The oldest symbol version of this architecture's glibc. */
#define CAPSULE_GLIBC_BASE_VERSION "GLIBC_2.0"

/* Relocations: REL, the addend stored in the slot (R_386_32 to &array[i]
 * holds i * size there before relocation, S + A after). */
#define CAPSULE_R_JUMP_SLOT R_386_JMP_SLOT
#define CAPSULE_R_GLOB_DAT R_386_GLOB_DAT
#define CAPSULE_R_ABS R_386_32
#define CAPSULE_R_ABS_NAME "32"
#define CAPSULE_R_COPY R_386_COPY
#define CAPSULE_DT_REL DT_REL
#define CAPSULE_DT_RELSZ DT_RELSZ
#define CAPSULE_DT_RELENT DT_RELENT
#define CAPSULE_REL_ADDEND_IN_SLOT 1
typedef ElfW(Rel) capsule_rel;
#define CAPSULE_REL_SYM(info) ELF32_R_SYM(info)
#define CAPSULE_REL_TYPE(info) ELF32_R_TYPE(info)
#define CAPSULE_REL_ADDEND(r) ((void)(r), (ElfW(Addr))0) /* in the slot instead */

/* ld.so.cache entry flags ld.so accepts: FLAG_ELF_LIBC6 (0x0003) for a
 * library linking libc, FLAG_ELF (0x0001) for one that does not; i386 has
 * no architecture bits. */
#define CAPSULE_LDCACHE_FLAGS 0x0003 /* what ldconfig gives a library linking libc */
#define CAPSULE_LDCACHE_FLAGS_OK(f) ((f) == CAPSULE_LDCACHE_FLAGS || (f) == 0x0001)

/* The smallest page the in-memory objects are laid out for. */
#define CAPSULE_IMAGE_PAGE 4096

#endif
