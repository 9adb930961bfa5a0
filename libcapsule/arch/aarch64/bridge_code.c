/* aarch64 machine code of the bridge's functions (bridge.h). The context
 * register is x9 (a temporary no argument uses); x16, the intra-procedure
 * scratch register, carries the target, as a PLT's does. Each function
 * starts with `bti c`; addresses are literals after the code. */
#include "bridge.h"

#include <stdint.h>
#include <string.h>

#define BTI_C 0xd503245fu
#define BR_X16 0xd61f0200u
#define BLR_X16 0xd63f0200u
#define RET 0xd65f03c0u
#define STP_FP_LR_PRE 0xa9bf7bfdu  /* stp x29, x30, [sp, #-16]! */
#define LDP_FP_LR_POST 0xa8c17bfdu /* ldp x29, x30, [sp], #16 */

/* ldr xRT, <pc + words * 4> */
static uint32_t
ldr_literal(unsigned rt, unsigned words)
{
    return 0x58000000u | (uint32_t)words << 5 | rt;
}

static void
put(unsigned char *p, size_t at, uint32_t insn)
{
    memcpy(p + at, &insn, 4);
}

static void
put_address(unsigned char *p, size_t at, const void *value)
{
    uint64_t v = (uint64_t)(uintptr_t)value;

    memcpy(p + at, &v, 8);
}

/* bti c; ldr x9, ctx; ldr x16, target; br x16; ctx; target */
void
capsule_arch_jump_stub(unsigned char *p, const void *target, const void *context)
{
    put(p, 0, BTI_C);
    put(p, 4, ldr_literal(9, 3));
    put(p, 8, ldr_literal(16, 4));
    put(p, 12, BR_X16);
    put_address(p, 16, context);
    put_address(p, 24, target);
}

/* bti c; stp x29, x30, [sp, #-16]!; ldr x16, target; blr x16;
 * ldp x29, x30, [sp], #16; ret; target: the arguments stay in x0 and x1. */
void
capsule_arch_call_stub(unsigned char *p, const void *target)
{
    put(p, 0, BTI_C);
    put(p, 4, STP_FP_LR_PRE);
    put(p, 8, ldr_literal(16, 4));
    put(p, 12, BLR_X16);
    put(p, 16, LDP_FP_LR_POST);
    put(p, 20, RET);
    put_address(p, 24, target);
}
