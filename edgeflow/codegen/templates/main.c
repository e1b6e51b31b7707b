/* edgeflow test harness (generated project; do not edit).
 *
 *   model_test [INPUT.bin [OUTPUT.bin]]     (defaults: input.bin, output.bin)
 *
 * Reads int8 samples of MODEL_INPUT_SIZE bytes from INPUT, runs model_run on each and writes the
 * MODEL_OUTPUT_SIZE-byte int8 outputs to OUTPUT; prints "samples N". On the Cortex-M4 build
 * (EF_TIMER, startup_m4.c) the files go through semihosting and it also prints "timer_ticks T"
 * (all inferences) and "calib_ticks C" (a loop of EF_CALIB_LOOPS iterations of two instructions),
 * from which the caller derives instructions per inference under `qemu -icount shift=0`.
 */
#include <stdio.h>

#include "model.h"

#ifdef EF_TIMER
#include <stdint.h>
void ef_timer_start(void);
uint32_t ef_timer_now(void);
void ef_calib_loop(uint32_t loops);
void initialise_monitor_handles(void);
#define EF_CALIB_LOOPS 100000u
#endif

int main(int argc, char **argv) {
    static int8_t input[MODEL_INPUT_SIZE];
    static int8_t output[MODEL_OUTPUT_SIZE];
    const char *in_path = argc > 1 ? argv[1] : "input.bin";
    const char *out_path = argc > 2 ? argv[2] : "output.bin";
    FILE *fin;
    FILE *fout;
    long samples = 0;
#ifdef EF_TIMER
    uint32_t ticks = 0;
    uint32_t t0;
    initialise_monitor_handles();
    ef_timer_start();
#endif
    fin = fopen(in_path, "rb");
    fout = fopen(out_path, "wb");
    if (!fin || !fout) {
        printf("error: cannot open %s or %s\n", in_path, out_path);
        return 2;
    }
    while (fread(input, 1, MODEL_INPUT_SIZE, fin) == MODEL_INPUT_SIZE) {
#ifdef EF_TIMER
        t0 = ef_timer_now();
#endif
        if (model_run(input, output) != 0) {
            printf("error: model_run failed on sample %ld\n", samples);
            return 3;
        }
#ifdef EF_TIMER
        ticks += t0 - ef_timer_now(); /* the timer counts down */
#endif
        if (fwrite(output, 1, MODEL_OUTPUT_SIZE, fout) != MODEL_OUTPUT_SIZE) {
            printf("error: cannot write %s\n", out_path);
            return 2;
        }
        ++samples;
    }
    fclose(fin);
    fclose(fout);
    printf("samples %ld\n", samples);
#ifdef EF_TIMER
    printf("timer_ticks %lu\n", (unsigned long)ticks);
    t0 = ef_timer_now();
    ef_calib_loop(EF_CALIB_LOOPS);
    printf("calib_ticks %lu\n", (unsigned long)(t0 - ef_timer_now()));
    printf("calib_instructions %lu\n", (unsigned long)(2u * EF_CALIB_LOOPS));
#endif
    return 0;
}
