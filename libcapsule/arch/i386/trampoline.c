/* i386 trampolines for the dl* wrappers (see trampoline.h); the context
 * register is %eax (cdecl passes no argument in it). The arguments are on
 * the stack above the caller's return address, where glibc's functions
 * find them again when entered by a jump, with that return address, so
 * glibc sees the real caller. A call libcapsule makes is made at a 16-byte
 * aligned %esp (the entries are entered at 12 mod 16). */
#define _GNU_SOURCE
#include "trampoline.h"

__asm__(
    /* Decide-or-pass: a capsule_dl_call built on the stack (caller, the
     * three argument words, the context, room for the result), the decide
     * function called with its address; then its result returned, or the
     * (possibly edited) arguments written back and glibc's function
     * entered by a jump. Its address is read PC-relative, through the GOT
     * pointer: libcapsule has no text relocations. */
    ".macro CAPSULE_DECIDE name, decide, real\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  push (%esp)\n"
    "  push 8(%esp)\n"
    "  push 16(%esp)\n"
    "  push 24(%esp)\n"
    "  push %eax\n"
    "  sub $4, %esp\n"
    "  mov %esp, %ecx\n"
    "  push %ecx\n"
    "  call \\decide\n"
    "  add $4, %esp\n"
    "  test %eax, %eax\n"
    "  jnz 1f\n"
    "  mov 16(%esp), %ecx\n"
    "  mov %ecx, 28(%esp)\n"
    "  mov 12(%esp), %ecx\n"
    "  mov %ecx, 32(%esp)\n"
    "  mov 8(%esp), %ecx\n"
    "  mov %ecx, 36(%esp)\n"
    "  add $24, %esp\n"
    "  call 2f\n"
    "2:\n"
    "  pop %ecx\n"
    "  addl $_GLOBAL_OFFSET_TABLE_+(.-2b), %ecx\n"
    "  mov \\real@GOTOFF(%ecx), %ecx\n"
    "  jmp *%ecx\n"
    "1:\n"
    "  mov (%esp), %eax\n"
    "  add $24, %esp\n"
    "  ret\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    ".macro CAPSULE_OUTSIDE name, inside\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  xor %eax, %eax\n"
    "  jmp \\inside\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    /* Prepare-and-pass: the prepare hook called (the arguments stay where
     * they are), then a jump to the function it returned. */
    ".macro CAPSULE_PREPARE name, prepare\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  .cfi_startproc\n"
    "  sub $12, %esp\n"
    "  .cfi_adjust_cfa_offset 12\n"
    "  call \\prepare\n"
    "  add $12, %esp\n"
    "  .cfi_adjust_cfa_offset -12\n"
    "  jmp *%eax\n"
    "  .cfi_endproc\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    ".text\n"
    "CAPSULE_DECIDE capsule_entry_inside_dlsym, capsule_dlsym_decide, capsule_real_dlsym\n"
    "CAPSULE_DECIDE capsule_entry_inside_dlvsym, capsule_dlvsym_decide, capsule_real_dlvsym\n"
    "CAPSULE_OUTSIDE capsule_entry_outside_dlsym, capsule_entry_inside_dlsym\n"
    "CAPSULE_OUTSIDE capsule_entry_outside_dlvsym, capsule_entry_inside_dlvsym\n"
    /* dlopen(file, mode) -> capsule_inside_dlopen(file, mode, ns, caller),
     * called in a frame of its own. */
    "  .globl capsule_entry_inside_dlopen\n"
    "  .hidden capsule_entry_inside_dlopen\n"
    "  .type capsule_entry_inside_dlopen, @function\n"
    "  .p2align 4\n"
    "capsule_entry_inside_dlopen:\n"
    "  .cfi_startproc\n"
    "  sub $12, %esp\n"
    "  .cfi_adjust_cfa_offset 12\n"
    "  push 12(%esp)\n"
    "  .cfi_adjust_cfa_offset 4\n"
    "  push %eax\n"
    "  .cfi_adjust_cfa_offset 4\n"
    "  push 28(%esp)\n"
    "  .cfi_adjust_cfa_offset 4\n"
    "  push 28(%esp)\n"
    "  .cfi_adjust_cfa_offset 4\n"
    "  call capsule_inside_dlopen\n"
    "  add $28, %esp\n"
    "  .cfi_adjust_cfa_offset -28\n"
    "  ret\n"
    "  .cfi_endproc\n"
    "  .size capsule_entry_inside_dlopen, .-capsule_entry_inside_dlopen\n"
    /* The program's dlopen and dlmopen: the prepare hook, then glibc's own
     * function, entered by a jump so that the return address glibc reads to
     * find its caller (namespace, $ORIGIN, RPATH chain, RUNPATH) is the
     * caller's. */
    "CAPSULE_PREPARE capsule_entry_outside_dlopen, capsule_outside_dlopen_prepare\n"
    "CAPSULE_PREPARE capsule_entry_outside_dlmopen, capsule_outside_dlmopen_prepare\n");
