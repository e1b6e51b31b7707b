"""Generated C from the MLPerf Tiny int8 .tflite files (``tests/data/mlperf_tiny``): bit-exact with the
runtime and with LiteRT's reference kernels on the host, and (keyword spotting, DS-CNN) under QEMU.

ad01: fully connected layers in LiteRT's single rounding; kws: NHWC input transposed in the library,
depthwise convs, average pool, int8 softmax (gemmlowp fixed point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeflow.runtime as rt
from edgeflow.codegen import build, generate
from tests.codegen_helpers import ARM_SKIP, HAVE_ARM, runtime_io

pytest.importorskip("tflite")
MODELS = Path(__file__).resolve().parent / "data" / "mlperf_tiny"
NAMES = ["ad01_int8.tflite", "kws_ref_model.tflite"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codegen_tflite")
    out = {}
    for name in NAMES:
        path = MODELS / name
        program = rt.load(path, rounding="tflm")
        model = generate(program, folder / Path(name).stem)
        build.build_host(folder / Path(name).stem)
        gi = program.inputs[0]
        x = np.random.default_rng(3).integers(-128, 128, (16, *gi.shape[1:])).astype(gi.dtype)
        out[name] = (program, model, folder / Path(name).stem, x)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_host_c_is_bit_exact_with_the_runtime_and_litert(built, name):
    program, model, proj, x = built[name]
    xi, ref = runtime_io(program, model, x)
    out = build.run_host(proj, xi, model.input_size, model.output_size)
    assert np.array_equal(out, ref) and len(np.unique(ref)) > 1
    assert model.weights_bytes == program.flash_bytes
    pytest.importorskip("ai_edge_litert")
    from tests.runtime_helpers import litert_run

    assert np.array_equal(out, litert_run(MODELS / name, x).reshape(len(x), -1))


@pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)
def test_kws_under_qemu_is_bit_exact(built):
    program, model, proj, x = built["kws_ref_model.tflite"]
    xi, ref = runtime_io(program, model, x[:1])
    build.build_arm(proj)
    run = build.run_qemu(proj, xi, model.input_size, model.output_size)
    assert np.array_equal(run.outputs, ref)
    assert build.section_sizes(proj)["total"]["bss"] == program.plan_memory().arena_bytes
