"""Cortex-M4 DSP kernels (SXTB16 / SMLAD) and packed 2- / 4-bit weights: bit-exact on odd sizes.

One small network covers what the SIMD kernels special-case: channel counts that are not multiples
of 2 or 4 (3 -> 5 -> 7 -> 6 -> 12 -> 9; 11 outputs), dot-product lengths with tails (K = 27, 5, 42,
54; 9-tap depthwise windows), zero padding, stride 2, dilation (2 in a depthwise conv, (1, 2) in a 2x3 conv), a depthwise
conv with channel multiplier 2 (the 3x3 register path), a grouped conv (the portable fallback) and a
fully connected layer. Quantized W8A8, W4A8 and W2A8 by edgeflow, generated, built for the host and
the Cortex-M4 and run under QEMU: every output equals ``Program.run(x, rounding="tflm")``, and the
packed weights make ``weights.o``'s ``.rodata`` the profile's flash to the byte. A copy of the W8 file
whose pointwise and depthwise layers have 1024x their weight (and bias) scale takes the requantization's
left-shift path (multipliers >= 1) in the DSP kernels.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import edgeflow.runtime as rt
from edgeflow.codegen import build, generate
from edgeflow.codegen.lower import pack_weights, storage_bits
from tests.codegen_helpers import ARM_SKIP, HAVE_ARM, quantized_export, runtime_io

torch = pytest.importorskip("torch")
SHAPE = (3, 9, 13)
BITS = (8, 4, 2)


def odd_net() -> torch.nn.Module:
    """The network (seeded: the same weights every time)."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.ReLU(),                     # im2col, K = 27
        nn.Conv2d(5, 5, 3, groups=5, dilation=2, padding=2), nn.ReLU(),         # depthwise, dilated, 9 taps
        nn.Conv2d(5, 7, 1), nn.ReLU(),                                          # pointwise, K = 5
        nn.Conv2d(7, 6, (2, 3), dilation=(1, 2), padding=(1, 0)), nn.ReLU(),    # K = 42, odd pixels
        nn.Conv2d(6, 12, 3, groups=6, stride=2, padding=1), nn.ReLU(),          # depthwise x2, 3x3
        nn.Conv2d(12, 9, (1, 3), groups=3, padding=(0, 1)), nn.ReLU(),          # grouped: portable
        nn.Flatten(), nn.Linear(54, 11))                                        # K = 54, N = 11


def scaled_weights(src, dst, layers: tuple[str, ...], factor: float):
    """``src`` (an edgeflow QDQ export) with the weight and bias scales of ``layers`` times ``factor``
    (same integers: the requantization multipliers grow by ``factor``), saved to ``dst``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(src)
    for init in model.graph.initializer:
        if init.name.split(".")[0] in layers and init.name.endswith(("weight_scale", "bias_scale")):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))
    onnx.save(model, dst)
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Per weight width: (program, CModel, project, runtime int8 inputs, runtime outputs); host-built."""
    folder = tmp_path_factory.mktemp("codegen_simd")
    x = np.random.default_rng(3).normal(0, 1, (6, *SHAPE)).astype(np.float32)
    out = {}
    for bits in BITS:
        out[bits] = quantized_export(odd_net(), SHAPE, bits, folder / f"w{bits}.onnx")
    out["left"] = scaled_weights(out[8], folder / "left.onnx", ("4", "8"), 1024.0)
    for key, path in out.items():
        program = rt.load(path, rounding="tflm")
        model = generate(program, folder / f"c{key}")
        build.build_host(folder / f"c{key}")
        out[key] = (program, model, folder / f"c{key}", *runtime_io(program, model, x))
    return out


@pytest.mark.parametrize("bits", BITS)
def test_host_build_is_bit_exact(built, bits):
    program, model, proj, xi, ref = built[bits]
    assert {int(n.attrs["weight_bits"]) for n in program.ir.nodes if n.kind in ("conv", "fully_connected")} == {bits}
    out = build.run_host(proj, xi, model.input_size, model.output_size)
    assert np.array_equal(out, ref), f"W{bits}: {int((out != ref).sum())} outputs differ"
    assert len(np.unique(ref)) > 1


@pytest.mark.parametrize("bits", BITS)
def test_packed_weights_are_the_profiles_flash(built, bits):
    """2- and 4-bit weights take ceil(size * bits / 8) bytes: the arrays are the profile's flash."""
    program, model, proj, _, _ = built[bits]
    assert model.weights_bytes == program.flash_bytes
    weights = sum(a.nbytes for a in model.arrays if a.name.startswith("ef_w"))
    sizes = [n.params["weight"].size for n in program.ir.nodes if n.kind in ("conv", "fully_connected")]
    assert weights == sum(-(-size * bits // 8) for size in sizes)
    assert f", {bits}, " in (proj / "model.c").read_text()  # the kernels are told the width


def test_storage_widths():
    """Uniform 2-/4-bit weights are packed at their width, 3-bit ones in 4 bits; values that do not fit
    4 bits (a 4-bit power-of-two code of 64, 5-7 bits) stay one byte each. The layout: rows 0 and 1 share
    bytes (row 0 in the low nibble), the odd last row is a flat stream; 2-bit rows come in fours."""
    w = np.array([[-3, 3], [1, 0]], dtype=np.int8)
    assert (storage_bits(2, w // 3), storage_bits(3, w), storage_bits(4, w)) == (2, 4, 4)
    assert (storage_bits(4, np.array([64, -8], np.int8)), storage_bits(6, w)) == (8, 8)
    rows = np.arange(-8, 7, dtype=np.int8).reshape(3, 5)
    assert pack_weights(rows, 4).view(np.uint8).tolist() == [0xD8, 0xE9, 0xFA, 0x0B, 0x1C, 0x32, 0x54, 0x06]
    rows = np.array([[-2, -1, 0], [1, -2, -1], [0, 1, -2], [-1, 0, 1], [1, 1, -2]], dtype=np.int8)
    assert pack_weights(rows, 2).view(np.uint8).tolist() == [0xC6, 0x1B, 0x6C, 0x25]


@pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)
@pytest.mark.parametrize("bits", BITS)
def test_cortex_m4_simd_build_is_bit_exact(built, bits):
    """The M4 build (the DSP kernels) under QEMU equals the runtime; weights.o's .rodata is the flash."""
    program, model, proj, xi, ref = built[bits]
    build.build_arm(proj)
    run = build.run_qemu(proj, xi, model.input_size, model.output_size)
    assert np.array_equal(run.outputs, ref), f"W{bits}: {int((run.outputs != ref).sum())} outputs differ"
    assert build.section_sizes(proj)["weights"]["rodata"] == program.flash_bytes


@pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)
def test_left_shift_requantization_on_the_m4(built):
    """Multipliers >= 1 (left shifts) leave the inlined right-shift requantization: still bit-exact."""
    program, model, proj, xi, ref = built["left"]
    shifts = np.concatenate([a.values for a in model.arrays if a.name.startswith("ef_s")])
    assert (shifts > 0).sum() >= 15 and (shifts <= 0).any()
    assert np.array_equal(build.run_host(proj, xi, model.input_size, model.output_size), ref)
    build.build_arm(proj)
    run = build.run_qemu(proj, xi, model.input_size, model.output_size)
    assert np.array_equal(run.outputs, ref) and len(np.unique(ref)) > 5


@pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)
def test_dsp_kernels_replace_the_portable_ones_on_the_m4(built, tmp_path):
    """kernels.o holds SMLAD / SXTB16; the same project built for a core without the DSP extension (the
    portable fallback; -mcpu=cortex-m3, which the M4 runs) gives the same outputs with more instructions."""
    _, model, proj, xi, ref = built[8]
    asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(proj / "arm" / "kernels.o")], capture_output=True,
                         text=True, check=True).stdout
    assert "smlad" in asm and "sxtb16" in asm
    plain = shutil.copytree(proj, tmp_path / "nodsp", ignore=shutil.ignore_patterns("arm", "*.elf", "model_test"))
    subprocess.run(["make", "-s", "arm", "ARM_CFLAGS=-mcpu=cortex-m3 -mthumb -Os -ffunction-sections "
                    "-fdata-sections -std=c99 -Wall -Wextra -Werror"], cwd=plain, check=True, capture_output=True)
    asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(plain / "arm" / "kernels.o")], capture_output=True,
                         text=True, check=True).stdout
    assert "smlad" not in asm
    simd = build.run_qemu(proj, xi, model.input_size, model.output_size)
    portable = build.run_qemu(plain, xi, model.input_size, model.output_size)
    assert np.array_equal(portable.outputs, ref)
    assert simd.instructions < 0.8 * portable.instructions
