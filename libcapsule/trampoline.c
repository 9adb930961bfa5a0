/* x86-64 trampolines for the dl* wrappers (see trampoline.h). The C
 * functions they jump to are entered with the caller's return address still
 * on the stack, so `caller` is exact and a decided call returns directly. */
#define _GNU_SOURCE
#include "trampoline.h"

#include <dlfcn.h>

#if !defined(__x86_64__) || defined(__ILP32__)
#error "libcapsule's dl* trampolines are written for x86-64: port trampoline.c"
#endif

void *capsule_real_dlsym = (void *)dlsym;
void *capsule_real_dlvsym = (void *)dlvsym;

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
    /* dlopen(file, mode) -> capsule_outside_dlopen(file, mode, caller) */
    "  .globl capsule_entry_outside_dlopen\n"
    "  .hidden capsule_entry_outside_dlopen\n"
    "  .type capsule_entry_outside_dlopen, @function\n"
    "  .p2align 4\n"
    "capsule_entry_outside_dlopen:\n"
    "  mov (%rsp), %rdx\n"
    "  jmp capsule_outside_dlopen\n"
    "  .size capsule_entry_outside_dlopen, .-capsule_entry_outside_dlopen\n"
    /* dlmopen(lmid, file, mode) -> capsule_outside_dlmopen(lmid, file, mode, caller) */
    "  .globl capsule_entry_outside_dlmopen\n"
    "  .hidden capsule_entry_outside_dlmopen\n"
    "  .type capsule_entry_outside_dlmopen, @function\n"
    "  .p2align 4\n"
    "capsule_entry_outside_dlmopen:\n"
    "  mov (%rsp), %rcx\n"
    "  jmp capsule_outside_dlmopen\n"
    "  .size capsule_entry_outside_dlmopen, .-capsule_entry_outside_dlmopen\n");
