/* aarch64 trampolines for the dl* wrappers (see trampoline.h); the context
 * register is x9. The caller's return address is the link register at
 * entry: C functions a trampoline branches to keep it, and glibc's
 * functions are entered by a branch with x30 restored, so glibc sees the
 * real caller. Every entry starts with `bti c`. */
#define _GNU_SOURCE
#include "trampoline.h"

__asm__(
    /* Decide-or-pass: a capsule_dl_call on the stack above the frame record
     * (result, context, a2, a1, a0, caller at sp+16..sp+56), the decide
     * function called with its address; then its result returned, or the
     * (possibly edited) arguments restored and glibc's function entered by
     * a branch through x16. */
    ".macro CAPSULE_DECIDE name, decide, real\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, %function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  .cfi_startproc\n"
    "  bti c\n"
    "  stp x29, x30, [sp, #-64]!\n"
    "  .cfi_def_cfa_offset 64\n"
    "  .cfi_offset 29, -64\n"
    "  .cfi_offset 30, -56\n"
    "  mov x29, sp\n"
    "  stp x9, x2, [sp, #24]\n"
    "  stp x1, x0, [sp, #40]\n"
    "  str x30, [sp, #56]\n"
    "  add x0, sp, #16\n"
    "  bl \\decide\n"
    "  cbnz w0, 1f\n"
    "  ldp x1, x0, [sp, #40]\n"
    "  ldr x2, [sp, #32]\n"
    "  ldp x29, x30, [sp], #64\n"
    "  .cfi_remember_state\n"
    "  .cfi_def_cfa_offset 0\n"
    "  adrp x16, \\real\n"
    "  ldr x16, [x16, :lo12:\\real]\n"
    "  br x16\n"
    "1:\n"
    "  .cfi_restore_state\n"
    "  ldr x0, [sp, #16]\n"
    "  ldp x29, x30, [sp], #64\n"
    "  .cfi_def_cfa_offset 0\n"
    "  ret\n"
    "  .cfi_endproc\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    ".macro CAPSULE_OUTSIDE name, inside\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, %function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  bti c\n"
    "  mov x9, xzr\n"
    "  b \\inside\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    /* Prepare-and-pass: x0..x3 saved around the prepare hook (dlopen and
     * dlmopen take at most three), then a branch to the function it
     * returned, with the caller's link register. */
    ".macro CAPSULE_PREPARE name, prepare\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, %function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  .cfi_startproc\n"
    "  bti c\n"
    "  stp x29, x30, [sp, #-48]!\n"
    "  .cfi_def_cfa_offset 48\n"
    "  .cfi_offset 29, -48\n"
    "  .cfi_offset 30, -40\n"
    "  mov x29, sp\n"
    "  stp x0, x1, [sp, #16]\n"
    "  stp x2, x3, [sp, #32]\n"
    "  bl \\prepare\n"
    "  mov x16, x0\n"
    "  ldp x0, x1, [sp, #16]\n"
    "  ldp x2, x3, [sp, #32]\n"
    "  ldp x29, x30, [sp], #48\n"
    "  .cfi_def_cfa_offset 0\n"
    "  br x16\n"
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
    "  .type capsule_entry_inside_dlopen, %function\n"
    "  .p2align 4\n"
    "capsule_entry_inside_dlopen:\n"
    "  bti c\n"
    "  mov x2, x9\n"
    "  mov x3, x30\n"
    "  b capsule_inside_dlopen\n"
    "  .size capsule_entry_inside_dlopen, .-capsule_entry_inside_dlopen\n"
    /* The program's dlopen and dlmopen: the prepare hook, then glibc's own
     * function, entered by a branch so that the return address glibc reads to
     * find its caller (namespace, $ORIGIN, RPATH chain, RUNPATH) is the
     * caller's. */
    "CAPSULE_PREPARE capsule_entry_outside_dlopen, capsule_outside_dlopen_prepare\n"
    "CAPSULE_PREPARE capsule_entry_outside_dlmopen, capsule_outside_dlmopen_prepare\n");
