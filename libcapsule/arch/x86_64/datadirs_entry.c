/* x86-64 entries of the data file wrappers (datadirs.c): the context from
 * %r10 into the integer argument register after the function's own
 * arguments, then a jump to the C wrapper capsule_dd_NAME. */
#include "datadirs_list.h"

#define ARG_REG_1 rsi
#define ARG_REG_2 rdx
#define ARG_REG_3 rcx
#define ARG_REG_4 r8
#define AS_ASM(id, name, version, fn, nargs) "CAPSULE_DD_ENTRY " #fn ", " ARG_REG(nargs) "\n"
#define ARG_REG(n) STRING(ARG_REG_##n)
#define STRING(reg) STRING_OF(reg) /* expands ARG_REG_n first */
#define STRING_OF(reg) #reg

__asm__(".macro CAPSULE_DD_ENTRY name, reg\n"
        "  .globl capsule_dd_entry_\\name\n"
        "  .hidden capsule_dd_entry_\\name\n"
        "  .type capsule_dd_entry_\\name, @function\n"
        "  .p2align 4\n"
        "capsule_dd_entry_\\name:\n"
        "  mov %r10, %\\reg\n"
        "  jmp capsule_dd_\\name\n"
        "  .size capsule_dd_entry_\\name, .-capsule_dd_entry_\\name\n"
        ".endm\n"
        ".text\n" DATADIRS_FUNCTIONS(AS_ASM));
