/* x86-64 machine code of the bridge's functions (bridge.h). */
#include "bridge.h"

#include <stdint.h>
#include <string.h>

/* movabs $context, %r10 (when there is one); movabs $target, %r11;
 * jmp *%r11. r10 and r11 are the registers a call may clobber that carry
 * no argument. */
void
capsule_arch_jump_stub(unsigned char *p, const void *target, const void *context)
{
    uint64_t ctx = (uint64_t)(uintptr_t)context, t = (uint64_t)(uintptr_t)target;

    memset(p, 0xcc, CAPSULE_BRIDGE_STUB_SIZE);
    if (context) {
        *p++ = 0x49, *p++ = 0xba;
        memcpy(p, &ctx, 8), p += 8;
    }
    *p++ = 0x49, *p++ = 0xbb;
    memcpy(p, &t, 8), p += 8;
    *p++ = 0x41, *p++ = 0xff, *p++ = 0xe3;
}

/* sub $8, %rsp; movabs $target, %r11; call *%r11; add $8, %rsp; ret: the
 * arguments stay in their registers, the stack stays 16-byte aligned. */
void
capsule_arch_call_stub(unsigned char *p, const void *target)
{
    uint64_t t = (uint64_t)(uintptr_t)target;

    memset(p, 0xcc, CAPSULE_BRIDGE_STUB_SIZE);
    *p++ = 0x48, *p++ = 0x83, *p++ = 0xec, *p++ = 0x08;
    *p++ = 0x49, *p++ = 0xbb;
    memcpy(p, &t, 8), p += 8;
    *p++ = 0x41, *p++ = 0xff, *p++ = 0xd3;
    *p++ = 0x48, *p++ = 0x83, *p++ = 0xc4, *p++ = 0x08;
    *p++ = 0xc3;
}
