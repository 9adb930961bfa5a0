/* aarch64 entries of the data file wrappers (datadirs.c): `bti c`, the
 * context from x9 into the argument register after the function's own
 * arguments, then a branch to the C wrapper capsule_dd_NAME. */
#include "datadirs_list.h"

#define AS_ASM(id, name, version, fn, nargs) "CAPSULE_DD_ENTRY " #fn ", " #nargs "\n"

__asm__(".macro CAPSULE_DD_ENTRY name, nargs\n"
        "  .globl capsule_dd_entry_\\name\n"
        "  .hidden capsule_dd_entry_\\name\n"
        "  .type capsule_dd_entry_\\name, %function\n"
        "  .p2align 4\n"
        "capsule_dd_entry_\\name:\n"
        "  bti c\n"
        "  mov x\\nargs, x9\n"
        "  b capsule_dd_\\name\n"
        "  .size capsule_dd_entry_\\name, .-capsule_dd_entry_\\name\n"
        ".endm\n"
        ".text\n" DATADIRS_FUNCTIONS(AS_ASM));
