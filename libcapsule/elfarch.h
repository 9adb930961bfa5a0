/* Architecture preamble: every ELF type and relocation name the runtime
 * uses. The values come from libcapsule/arch/<arch>/arch.h (the build puts
 * that directory on the include path). Porting libcapsule is adding such a
 * directory, as libcapsule/arch/x86_64, i386 and aarch64 are: arch.h, the
 * machine code beside it and a meson.build listing it. */
#ifndef CAPSULE_ELFARCH_H
#define CAPSULE_ELFARCH_H

#include <elf.h>
#include <link.h>

#include "arch.h"

/* ELFW(ST_TYPE) and friends: the st_info macros of the native class. */
#ifndef ELFW
#define ELFW(type) _ElfW(ELF, __ELF_NATIVE_CLASS, type)
#endif

#ifndef CAPSULE_REL_ADDEND_IN_SLOT
#error "arch.h must say where relocation addends live (CAPSULE_REL_ADDEND_IN_SLOT)"
#endif

#endif
