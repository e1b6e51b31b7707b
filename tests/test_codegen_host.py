"""Generated C, built with the host gcc (-std=c99 -Wall -Wextra -Werror): bit-exact with the runtime (tflm).

Zoo models exported int8 by edgeflow (seeded random weights, calibrated on random data), each built
once; the quickstart architecture (cnn, digits) also on the whole digits test split.
"""

from __future__ import annotations

import ctypes
import re
import subprocess

import numpy as np
import pytest

from edgeflow.codegen import build
from edgeflow.codegen.emit import TEMPLATES
from edgeflow.runtime import quant
from tests.codegen_helpers import digits_test_split, project, random_inputs, runtime_io

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(bool(build.missing(build.HOST_TOOLS)), reason="no host C compiler (cc) or make")

NAMES = ["cnn", "tcn", "resnet8", "dscnn", "mobilenet_v1"]
SAMPLES = {"cnn": 16, "tcn": 16, "resnet8": 4, "dscnn": 8, "mobilenet_v1": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codegen_host")
    out = {}
    for name in NAMES:
        program, model, proj = project(name, folder)
        build.build_host(proj)
        out[name] = (program, model, proj)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_host_c_is_bit_exact_with_the_runtime(built, name):
    program, model, proj = built[name]
    xi, ref = runtime_io(program, model, random_inputs(name, SAMPLES[name], seed=1))
    out = build.run_host(proj, xi, model.input_size, model.output_size)
    assert out.shape == ref.shape == (SAMPLES[name], model.output_size)
    assert np.array_equal(out, ref), f"{name}: {int((out != ref).sum())} of {out.size} outputs differ"
    assert len(np.unique(ref)) > 1  # not a constant output: the comparison can fail


@pytest.mark.parametrize("name", NAMES)
def test_constants_are_the_profiles_flash_and_the_arena_is_the_plan(built, name):
    """weights.c holds exactly what the profile counts as flash (8-bit weights, int32 biases, one
    multiplier + shift per channel, add/pool requantization); the arena is the planner's."""
    program, model, proj = built[name]
    assert model.weights_bytes == program.flash_bytes
    assert model.arena_bytes == program.plan_memory().arena_bytes
    header = (proj / "model.h").read_text()
    assert f"#define MODEL_ARENA_BYTES {model.arena_bytes}\n" in header
    assert "int model_run(const int8_t *input, int8_t *output);" in header
    code = (proj / "model.c").read_text() + (proj / "kernels.c").read_text()
    assert not re.search(r"\b(malloc|calloc|realloc|free)\s*\(", code)
    calls = re.findall(r"^    ef_\w+\(", (proj / "model.c").read_text(), flags=re.M)
    layers = [n for n in program.ir.nodes if n.kind not in ("quantize", "dequantize", "softmax", "reshape")]
    assert len(calls) == len(layers)  # one call per layer (views share their buffer)


def test_quickstart_architecture_on_the_digits_test_split(built):
    program, model, proj = built["cnn"]
    x = digits_test_split()
    xi, ref = runtime_io(program, model, x)
    out = build.run_host(proj, xi, model.input_size, model.output_size)
    assert len(x) >= 300 and np.array_equal(out, ref)


def test_requantization_matches_quant_on_edge_values(tmp_path):
    """ef_multiply_by_quantized_multiplier (kernels.c, via ctypes) equals
    quant.multiply_by_quantized_multiplier on int32 extremes, ties and random values."""
    lib = tmp_path / "libk.so"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-o", str(lib),
                    str(TEMPLATES / "kernels.c")], check=True, capture_output=True)
    f = ctypes.CDLL(str(lib)).ef_multiply_by_quantized_multiplier
    f.restype, f.argtypes = ctypes.c_int32, [ctypes.c_int32] * 3
    rng = np.random.default_rng(0)
    xs = np.concatenate([[quant.INT32_MIN, quant.INT32_MAX, 0, 1, -1, 3, -3, 1 << 20, -(1 << 20)],
                         rng.integers(-2**31, 2**31, 300), rng.integers(-4096, 4096, 300)])
    reals = np.concatenate([[1e-9, 0.5, 0.999999, 1.0, 1.5, 3.0, 2.0**-20, 2.0**-31, 1234.5],
                            np.exp(rng.uniform(np.log(1e-6), np.log(30.0), 60))])
    ms, ss = quant.quantize_multiplier(reals)
    for m, s in zip(ms, ss):
        want = quant.multiply_by_quantized_multiplier(xs, m, s)
        got = np.array([f(int(x), int(m), int(s)) for x in xs])
        assert np.array_equal(got, want), (m, s)


def test_onnxruntime_qoperator_per_tensor_file(tmp_path):
    """A file from onnxruntime's quantize_static (QOperator, per-tensor weights: one multiplier for
    all channels) generates, builds and agrees bit for bit too."""
    import edgeflow.runtime as rt
    from edgeflow.codegen import generate
    from tests.test_runtime_models import ptq

    program = rt.load(ptq(tmp_path, "tcn", "QOperator", per_channel=False), rounding="tflm")
    model = generate(program, tmp_path / "c")
    assert model.weights_bytes == program.flash_bytes
    assert all(a.values.size == 1 for a in model.arrays if a.name.startswith("ef_m"))  # per tensor
    xi, ref = runtime_io(program, model, np.random.default_rng(4).normal(0, 1, (8, 1, 64)).astype(np.float32))
    build.build_host(tmp_path / "c")
    assert np.array_equal(build.run_host(tmp_path / "c", xi, model.input_size, model.output_size), ref)
