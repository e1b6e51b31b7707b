"""Cortex-M4 build (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os) and run under QEMU mps2-an386.

Bit-exact with the runtime (tflm) on the quickstart architecture (cnn, digits test samples) and on
every other zoo model (dscnn, tcn, resnet8, mobilenet_v1: the DSP kernels' im2col, pointwise, depthwise
and fully connected paths on real layer sizes); section sizes equal the profile's flash and the planner's arena; instructions per inference
from the board timer under ``-icount shift=0`` (QEMU counts instructions, not cycles).
Skipped, naming ``make arm-toolchain``, without the toolchain.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.codegen import build
from tests.codegen_helpers import ARM_SKIP, HAVE_ARM, digits_test_split, project, random_inputs, runtime_io

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """cnn on 8 digits test samples, dscnn on 2 random inputs, tcn / resnet8 / mobilenet_v1 on one: built
    for the M4, run once in QEMU."""
    folder = tmp_path_factory.mktemp("codegen_arm")
    out = {}
    for name, x in (("cnn", digits_test_split()[:8]), ("dscnn", random_inputs("dscnn", 2, seed=2)),
                    *((n, random_inputs(n, 1, seed=2)) for n in ("tcn", "resnet8", "mobilenet_v1"))):
        program, model, proj = project(name, folder)
        xi, ref = runtime_io(program, model, x)
        build.build_arm(proj)
        out[name] = (program, model, proj, ref, build.run_qemu(proj, xi, model.input_size, model.output_size))
    return out


@pytest.mark.parametrize("name", ["cnn", "dscnn", "tcn", "resnet8", "mobilenet_v1"])
def test_qemu_cortex_m4_is_bit_exact_with_the_runtime(runs, name):
    _, _, _, ref, run = runs[name]
    assert np.array_equal(run.outputs, ref), f"{name}: {int((run.outputs != ref).sum())} outputs differ"
    assert len(np.unique(ref)) > 1


@pytest.mark.parametrize("name", ["cnn", "dscnn"])
def test_section_sizes_match_the_profile(runs, name):
    """.rodata of weights.o is the profile's flash to the byte (within 5 % required); .bss of the
    library is the planner's arena (>= and within 10 % required); no .data."""
    program, model, proj, _, _ = runs[name]
    sizes = build.section_sizes(proj)
    flash, arena = program.flash_bytes, program.plan_memory().arena_bytes
    assert sizes["weights"]["rodata"] == model.weights_bytes == flash
    assert sizes["total"]["bss"] == sizes["model"]["bss"] == arena
    assert sizes["total"]["data"] == 0
    assert 0 < sizes["kernels"]["text"] < 10240  # portable + DSP kernels: a few KB of Thumb-2
    assert (proj / "model_m4.elf").stat().st_size > flash


@pytest.mark.parametrize("name", ["cnn", "dscnn"])
def test_instruction_count(runs, name):
    """The calibration loop (2 instructions per iteration) reads 40 instructions per tick of the
    25 MHz timer: one instruction per virtual nanosecond under -icount shift=0. The DSP kernels (two
    MACs per SMLAD) spend 2-6 instructions per MAC on these models (0.45 MAC/cycle would be 2.2)."""
    _, model, _, ref, run = runs[name]
    assert run.instructions_per_tick == pytest.approx(40.0, rel=1e-3)
    per_inference = run.instructions / len(ref)
    assert 2 * model.macs < per_inference < 6 * model.macs
