/* Bare-metal start-up for QEMU's mps2-an386 (Cortex-M4) (generated project; do not edit).
 *
 * Vector table (initial stack pointer, reset handler), .data copy and .bss clearing, semihosting
 * through newlib's rdimon (the caller calls initialise_monitor_handles), exit through semihosting.
 * Timer: CMSDK APB TIMER0 at 0x40000000, clocked by the 25 MHz system clock, counting down.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(int argc, char **argv);
void Reset_Handler(void);
void Default_Handler(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    Default_Handler,
};

void Reset_Handler(void) {
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    exit(main(0, 0));
}

void Default_Handler(void) {
    exit(99);
}

void _init(void) {}
void _fini(void) {}

#define EF_TIMER0 ((volatile uint32_t *)0x40000000u)

void ef_timer_start(void) {
    EF_TIMER0[0] = 0u;          /* CTRL: stop */
    EF_TIMER0[2] = 0xFFFFFFFFu; /* RELOAD */
    EF_TIMER0[1] = 0xFFFFFFFFu; /* VALUE */
    EF_TIMER0[0] = 1u;          /* CTRL: enable */
}

uint32_t ef_timer_now(void) {
    return EF_TIMER0[1];
}

/* Exactly two instructions per iteration (subs, bne). */
void ef_calib_loop(uint32_t loops) {
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(loops) : : "cc");
}
