/* i386 entries of the data file wrappers (datadirs.c). cdecl passes every
 * argument on the stack, where no room is left for one more: each entry
 * calls its C wrapper capsule_dd_NAME in a frame of its own, with copies
 * of the function's `nargs` arguments and then the context from %eax, and
 * returns its result (in %eax, or %edx:%eax). The call is made at a 16-byte
 * aligned %esp (the entry is entered at 12 mod 16). */
#include "datadirs_list.h"

#define AS_ASM(id, name, version, fn, nargs) "CAPSULE_DD_ENTRY " #fn ", " #nargs "\n"

__asm__(".macro CAPSULE_DD_ENTRY name, nargs\n"
        "  .globl capsule_dd_entry_\\name\n"
        "  .hidden capsule_dd_entry_\\name\n"
        "  .type capsule_dd_entry_\\name, @function\n"
        "  .p2align 4\n"
        "capsule_dd_entry_\\name:\n"
        "  .cfi_startproc\n"
        /* padding so that the call happens at 0 mod 16 */
        "  .set .Lpad\\@, (12 - 4 * (\\nargs + 1)) & 15\n"
        "  sub $.Lpad\\@, %esp\n"
        "  .cfi_adjust_cfa_offset .Lpad\\@\n"
        "  push %eax\n"
        "  .cfi_adjust_cfa_offset 4\n"
        /* the last argument first; each push moves the next one's offset
         * by exactly the word it pushed, so the offset stays the same */
        "  .rept \\nargs\n"
        "  push (4 * \\nargs + .Lpad\\@ + 4)(%esp)\n"
        "  .cfi_adjust_cfa_offset 4\n"
        "  .endr\n"
        "  call capsule_dd_\\name\n"
        "  add $(.Lpad\\@ + 4 * (\\nargs + 1)), %esp\n"
        "  .cfi_adjust_cfa_offset -(.Lpad\\@ + 4 * (\\nargs + 1))\n"
        "  ret\n"
        "  .cfi_endproc\n"
        "  .size capsule_dd_entry_\\name, .-capsule_dd_entry_\\name\n"
        ".endm\n"
        ".text\n" DATADIRS_FUNCTIONS(AS_ASM));
