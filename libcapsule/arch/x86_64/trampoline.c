/* x86-64 trampolines for the dl* wrappers (see trampoline.h); the context
 * register is %r10. The C functions they jump to are entered with the
 * caller's return address still on the stack, so `caller` is exact and a
 * decided call returns directly; glibc's functions are entered by a jump,
 * with that return address, so glibc sees the real caller. */
#define _GNU_SOURCE
#include "trampoline.h"

/* Decide-or-pass: save rdi, rsi, rdx and r10 as a capsule_dl_call, call the
 * decide function, then return its result or restore and jump to glibc. */
__asm__(
    ".macro CAPSULE_DECIDE name, decide, real\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  push %rdi\n"
    "  push %rsi\n"
    "  push %rdx\n"
    "  push %r10\n"
    "  sub $8, %rsp\n"
    "  mov %rsp, %rdi\n"
    "  call \\decide\n"
    "  test %eax, %eax\n"
    "  jnz 1f\n"
    "  add $8, %rsp\n"
    "  pop %r10\n"
    "  pop %rdx\n"
    "  pop %rsi\n"
    "  pop %rdi\n"
    "  jmp *\\real(%rip)\n"
    "1:\n"
    "  mov (%rsp), %rax\n"
    "  add $40, %rsp\n"
    "  ret\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    ".macro CAPSULE_OUTSIDE name, inside\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  xor %r10d, %r10d\n"
    "  jmp \\inside\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    /* Prepare-and-pass: save rdi, rsi and rdx (the arguments of dlopen and
     * dlmopen; three pushes keep the stack aligned for the call), call the
     * prepare hook, restore them and jump to the function it returned. */
    ".macro CAPSULE_PREPARE name, prepare\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  .cfi_startproc\n"
    "  push %rdi\n"
    "  .cfi_adjust_cfa_offset 8\n"
    "  push %rsi\n"
    "  .cfi_adjust_cfa_offset 8\n"
    "  push %rdx\n"
    "  .cfi_adjust_cfa_offset 8\n"
    "  call \\prepare\n"
    "  pop %rdx\n"
    "  .cfi_adjust_cfa_offset -8\n"
    "  pop %rsi\n"
    "  .cfi_adjust_cfa_offset -8\n"
    "  pop %rdi\n"
    "  .cfi_adjust_cfa_offset -8\n"
    "  jmp *%rax\n"
    "  .cfi_endproc\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    ".text\n"
    "CAPSULE_DECIDE capsule_entry_inside_dlsym, capsule_dlsym_decide, capsule_real_dlsym\n"
    "CAPSULE_DECIDE capsule_entry_inside_dlvsym, capsule_dlvsym_decide, capsule_real_dlvsym\n"
    "CAPSULE_OUTSIDE capsule_entry_outside_dlsym, capsule_entry_inside_dlsym\n"
    "CAPSULE_OUTSIDE capsule_entry_outside_dlvsym, capsule_entry_inside_dlvsym\n"
    /* dlopen(file, mode) -> capsule_inside_dlopen(file, mode, ns, caller) */
    "  .globl capsule_entry_inside_dlopen\n"
    "  .hidden capsule_entry_inside_dlopen\n"
    "  .type capsule_entry_inside_dlopen, @function\n"
    "  .p2align 4\n"
    "capsule_entry_inside_dlopen:\n"
    "  mov %r10, %rdx\n"
    "  mov (%rsp), %rcx\n"
    "  jmp capsule_inside_dlopen\n"
    "  .size capsule_entry_inside_dlopen, .-capsule_entry_inside_dlopen\n"
    /* The program's dlopen and dlmopen: the prepare hook, then glibc's own
     * function, entered by a jump so that the return address glibc reads to
     * find its caller (namespace, $ORIGIN, RPATH chain, RUNPATH) is the
     * caller's. */
    "CAPSULE_PREPARE capsule_entry_outside_dlopen, capsule_outside_dlopen_prepare\n"
    "CAPSULE_PREPARE capsule_entry_outside_dlmopen, capsule_outside_dlmopen_prepare\n");
