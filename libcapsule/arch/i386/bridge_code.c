/* i386 machine code of the bridge's functions (bridge.h). cdecl passes
 * every argument on the stack, so %eax (the context register) and %ecx
 * are free at a function's entry; calls keep the stack 16-byte aligned, as
 * gcc's i386 code assumes. */
#include "bridge.h"

#include <stdint.h>
#include <string.h>

static unsigned char *
imm32(unsigned char *p, const void *value)
{
    uint32_t v = (uint32_t)(uintptr_t)value;

    memcpy(p, &v, 4);
    return p + 4;
}

/* mov $context, %eax (when there is one); mov $target, %ecx; jmp *%ecx */
void
capsule_arch_jump_stub(unsigned char *p, const void *target, const void *context)
{
    memset(p, 0xcc, CAPSULE_BRIDGE_STUB_SIZE);
    if (context) {
        *p++ = 0xb8;
        p = imm32(p, context);
    }
    *p++ = 0xb9;
    p = imm32(p, target);
    *p++ = 0xff, *p++ = 0xe1;
}

/* For a two-argument target (dl_iterate_phdr): sub $4, %esp; push
 * 12(%esp) twice (the arguments again, in order); mov $target, %ecx; call
 * *%ecx; add $12, %esp; ret. Entered with %esp = 12 mod 16, the call is
 * made at 0 mod 16. */
void
capsule_arch_call_stub(unsigned char *p, const void *target)
{
    memset(p, 0xcc, CAPSULE_BRIDGE_STUB_SIZE);
    *p++ = 0x83, *p++ = 0xec, *p++ = 0x04;
    *p++ = 0xff, *p++ = 0x74, *p++ = 0x24, *p++ = 0x0c;
    *p++ = 0xff, *p++ = 0x74, *p++ = 0x24, *p++ = 0x0c;
    *p++ = 0xb9;
    p = imm32(p, target);
    *p++ = 0xff, *p++ = 0xd1;
    *p++ = 0x83, *p++ = 0xc4, *p++ = 0x0c;
    *p++ = 0xc3;
}
