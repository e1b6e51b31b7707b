"""Generated C for pad, mul, table activations (lut: LOGISTIC / TANH, ONNX Sigmoid) and hard-swish:
bit-exact with the runtime in tflm rounding on the host and (one model holding all four) under QEMU;
the all-ops model also equals LiteRT's reference kernels.

Models are tiny ``.tflite`` files (``tests.runtime_helpers.tflite_file``) and one QDQ ONNX file:
pad in NCHW (behind a pool) and in NHWC (straight on the input), mul with a broadcast constant and
of two tensors, mul over all 65,536 int8 pairs, hard-swish over every int8 input (one model, and
the kernel alone over 300 drawn quantizations). Flash: ``weights.o`` holds the profile's
``flash_bytes`` plus 256 bytes per lut table, which ``edgeflow.runtime.costs`` does not count.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeflow.runtime as rt
from edgeflow.codegen import build, generate
from edgeflow.codegen.emit import TEMPLATES
from edgeflow.codegen.lower import hard_swish_params
from edgeflow.runtime import ops
from edgeflow.runtime.errors import RuntimeModelError, UnsupportedOpError
from edgeflow.runtime.frontends import nodes as N
from tests.codegen_helpers import ARM_SKIP, HAVE_ARM, runtime_io
from tests.runtime_helpers import f32, i8, save, tfl_tensor, tflite_file, vi

pytest.importorskip("tflite")
POOL_1X1 = ("MAX_POOL_2D", "Pool2DOptions", {"Padding": 1, "StrideW": 1, "StrideH": 1, "FilterWidth": 1,
                                             "FilterHeight": 1})
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def _all_ops(path: Path) -> Path:
    """x (1, 5, 6, 3) -> 1x1 max pool (NCHW from here) -> PAD -> LOGISTIC -> MUL by a per-channel
    constant -> HARD_SWISH -> TANH -> MUL(hard-swish, tanh) with RELU -> y (NHWC)."""
    h, w, c = 5, 6, 3
    sh = [1, h + 3, w + 1, c]
    ts = [tfl_tensor("x", [1, h, w, c], np.int8, 0.05, 3), tfl_tensor("p", [1, h, w, c], np.int8, 0.05, 3),
          tfl_tensor("pads", [4, 2], np.int32, data=np.asarray([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32)),
          tfl_tensor("padded", sh, np.int8, 0.05, 3), tfl_tensor("sig", sh, np.int8, 1 / 256, -128),
          tfl_tensor("k", [c], np.int8, 0.01, 2, data=np.asarray([100, -77, 5], np.int8)),
          tfl_tensor("m1", sh, np.int8, 0.004, -10), tfl_tensor("hs", sh, np.int8, 0.003, -20),
          tfl_tensor("th", sh, np.int8, 1 / 128, 0), tfl_tensor("y", sh, np.int8, 0.002, 5)]
    ops_ = [(POOL_1X1[0], [0], [1], POOL_1X1[1], POOL_1X1[2]), ("PAD", [1, 2], [3], None, {}),
            ("LOGISTIC", [3], [4], None, {}), ("MUL", [4, 5], [6], "MulOptions", {"FusedActivationFunction": 0}),
            ("HARD_SWISH", [6], [7], None, {}), ("TANH", [7], [8], None, {}),
            ("MUL", [7, 8], [9], "MulOptions", {"FusedActivationFunction": 1})]
    return tflite_file(path, ts, ops_, [0], [9])


def _pad_hard_swish_nhwc(path: Path) -> Path:
    """x (1, 4, 8, 8) NHWC -> PAD (height, width and channels) -> HARD_SWISH (relu-ish exponent > 0)."""
    sh = [1, 5, 10, 9]
    ts = [tfl_tensor("x", [1, 4, 8, 8], np.int8, 0.08, -7),
          tfl_tensor("pads", [4, 2], np.int32, data=np.asarray([[0, 0], [1, 0], [2, 0], [0, 1]], np.int32)),
          tfl_tensor("padded", sh, np.int8, 0.08, -7), tfl_tensor("y", sh, np.int8, 0.03, -40)]
    return tflite_file(path, ts, [("PAD", [0, 1], [2], None, {}), ("HARD_SWISH", [2], [3], None, {})], [0], [3])


def _mul_all_pairs(path: Path, sa: float, za: int, sb: float, zb: int, sy: float, zy: int, act: int) -> Path:
    """x (1, 256, 256, 1) times the constant (1, 1, 256, 1) = -128..127 broadcast over the rows."""
    ts = [tfl_tensor("x", [1, 256, 256, 1], np.int8, sa, za),
          tfl_tensor("b", [1, 1, 256, 1], np.int8, sb, zb, data=ALL_INT8.reshape(1, 1, 256, 1)),
          tfl_tensor("y", [1, 256, 256, 1], np.int8, sy, zy)]
    return tflite_file(path, ts, [("MUL", [0, 1], [2], "MulOptions", {"FusedActivationFunction": act})], [0], [2])


def _onnx_pad_sigmoid_mul(path: Path, mode: str = "constant") -> Path:
    """QDQ ONNX, NCHW (1, 3, 4, 5): Q -> Pad (H, W) -> Sigmoid -> Mul by a (1, 3, 1, 1) constant -> DQ."""
    inits = {"sx": f32(0.04), "zx": i8(-5), "pads": np.asarray([0, 0, 1, 0, 0, 0, 2, 3], np.int64),
             "ss": f32(1 / 256), "zs": i8(-128), "k": np.asarray([90, -60, 7], np.int8).reshape(1, 3, 1, 1),
             "sk": f32(0.02), "zk": i8(4), "sy": f32(0.01), "zy": i8(-3)}
    from onnx import TensorProto, helper

    q, dq = "QuantizeLinear", "DequantizeLinear"
    nodes = [helper.make_node(q, ["x", "sx", "zx"], ["xq"]), helper.make_node(dq, ["xq", "sx", "zx"], ["xf"]),
             helper.make_node("Pad", ["xf", "pads"], ["pf"], mode=mode, name="border"),
             helper.make_node(q, ["pf", "sx", "zx"], ["pq"]), helper.make_node(dq, ["pq", "sx", "zx"], ["pd"]),
             helper.make_node("Sigmoid", ["pd"], ["sf"]), helper.make_node(q, ["sf", "ss", "zs"], ["sq"]),
             helper.make_node(dq, ["sq", "ss", "zs"], ["sd"]), helper.make_node(dq, ["k", "sk", "zk"], ["kf"]),
             helper.make_node("Mul", ["sd", "kf"], ["mf"]), helper.make_node(q, ["mf", "sy", "zy"], ["mq"]),
             helper.make_node(dq, ["mq", "sy", "zy"], ["y"])]
    return save(nodes, [vi("x", TensorProto.FLOAT, [None, 3, 4, 5])], [vi("y", TensorProto.FLOAT, [None, 3, 7, 8])],
                inits, path)


def _int8_inputs(program, n: int, seed: int) -> np.ndarray:
    gi = program.inputs[0]
    return np.random.default_rng(seed).integers(-128, 128, (n, *gi.shape[1:])).astype(np.int8)


def _host(program, folder: Path, x: np.ndarray):
    """(CModel, C outputs, runtime outputs) of ``program`` generated into ``folder`` and run on ``x``."""
    model = generate(program, folder)
    build.build_host(folder)
    xi, ref = runtime_io(program, model, x)
    return model, build.run_host(folder, xi, model.input_size, model.output_size), ref


def _lut_nodes(program) -> int:
    return sum(node.kind == "lut" for node in program.ir.nodes)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("codegen_ops")


def test_all_ops_tflite_host_bit_exact(folder):
    program = rt.load(_all_ops(folder / "all.tflite"), rounding="tflm")
    assert {"pad", "lut", "mul", "hard_swish"} <= {node.kind for node in program.ir.nodes}
    x = _int8_inputs(program, 32, seed=0)
    model, out, ref = _host(program, folder / "all", x)
    assert np.array_equal(out, ref) and len(np.unique(ref)) > 20
    # constants: the two muls' multiplier/shift pairs (16 B) + the 3-byte constant, two 256-byte tables
    assert _lut_nodes(program) == 2 and program.flash_bytes == 19 + 2 * 256  # mul/pad constants + two tables
    assert model.weights_bytes == program.flash_bytes
    pytest.importorskip("ai_edge_litert")
    from tests.runtime_helpers import litert_run

    assert np.array_equal(out, litert_run(folder / "all.tflite", x).reshape(len(x), -1))  # LiteRT's reference kernels


def test_nhwc_pad_and_hard_swish_on_every_int8_value(folder):
    program = rt.load(_pad_hard_swish_nhwc(folder / "hs.tflite"), rounding="tflm")
    assert [node.kind for node in program.ir.nodes] == ["pad", "hard_swish"]  # NHWC: no transposes
    assert hard_swish_params(program.ir.nodes[1])[5] > 0  # the saturating-shift branch of the relu-ish value
    x = np.stack([ALL_INT8.reshape(4, 8, 8), np.roll(ALL_INT8, 77).reshape(4, 8, 8)])
    model, out, ref = _host(program, folder / "hs", x)
    assert np.array_equal(out, ref) and len(np.unique(ref)) > 50
    assert model.weights_bytes == program.flash_bytes == 0


def test_onnx_pad_sigmoid_mul_host_bit_exact(folder):
    program = rt.load(_onnx_pad_sigmoid_mul(folder / "m.onnx"), rounding="tflm")
    assert [node.kind for node in program.ir.nodes] == ["quantize", "pad", "lut", "mul", "dequantize"]
    x = np.random.default_rng(1).normal(0, 2, (16, 3, 4, 5)).astype(np.float32)
    model, out, ref = _host(program, folder / "onnx", x)
    assert np.array_equal(out, ref) and len(np.unique(ref)) > 50
    assert model.weights_bytes == program.flash_bytes == 11 + 256


@pytest.mark.parametrize("case", [(0.02, 3, 0.05, -7, 0.004, 10, 0),   # multiplier 0.25
                                  (0.3, -20, 0.3, 0, 0.02, -5, 1),     # 4.5: a left shift; RELU
                                  (0.002, 0, 0.01, 100, 0.004, -120, 3)])  # 0.005: right shift 7; RELU6
def test_mul_on_all_int8_pairs(folder, case):
    sa, za, sb, zb, sy, zy, act = case
    name = f"mul{act}"
    program = rt.load(_mul_all_pairs(folder / f"{name}.tflite", *case), rounding="tflm")
    x = np.repeat(ALL_INT8, 256).reshape(1, 256, 256, 1)  # row r holds r - 128; the constant, every b
    model, out, ref = _host(program, folder / name, x)
    assert np.array_equal(out, ref) and len(np.unique(ref)) > 10
    assert model.weights_bytes == program.flash_bytes == 256 + 8


def test_hard_swish_kernel_over_drawn_quantizations(tmp_path):
    """ef_hard_swish alone (kernels.c as a shared library) on all 256 inputs for 300 drawn input and
    output quantizations (scales 1e-3..1e3: relu-ish exponents from negative to past 16) against the
    runtime's op."""
    lib = tmp_path / "libkernels.so"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-o", str(lib),
                    str(TEMPLATES / "kernels.c")], check=True, capture_output=True)
    kernel = ctypes.CDLL(str(lib)).ef_hard_swish
    rng = np.random.default_rng(5)
    exponents, checked = set(), 0
    for _ in range(300):
        sx, sy = (float(np.exp(rng.uniform(np.log(1e-3), np.log(1e3)))) for _ in range(2))
        node = N.hard_swish("hs", "x", "y", sx, int(rng.integers(-128, 128)), sy, int(rng.integers(-128, 128)),
                            np.int8)
        try:
            op = ops.build(node)
        except RuntimeModelError:  # s_x / (128 s_y) >= 1 (output exponent > 0): refused by the runtime
            continue
        ref = op.run([ALL_INT8], "tflm")[0]
        hs = np.asarray(hard_swish_params(node), dtype=np.int32)
        exponents.add(int(hs[5]))
        checked += 1
        out = np.zeros(256, dtype=np.int8)
        kernel(ALL_INT8.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), 256,
               hs.ctypes.data_as(ctypes.c_void_p))
        assert np.array_equal(out, ref), (sx, sy, hs)
    assert checked > 200 and min(exponents) < 0 < max(exponents) and max(exponents) > 16  # shifts past 15


def test_reflect_pad_is_one_line_and_writes_nothing(folder):
    program = rt.load(_onnx_pad_sigmoid_mul(folder / "reflect.onnx", mode="reflect"), rounding="tflm")
    with pytest.raises(UnsupportedOpError) as err:
        generate(program, folder / "reflect")
    assert str(err.value) == ("unsupported op pad (node 'border'): mode 'reflect'; the generator supports "
                              "constant pads")
    assert not (folder / "reflect").exists()


@pytest.mark.skipif(not HAVE_ARM, reason=ARM_SKIP)
def test_all_ops_under_qemu_bit_exact_and_sizes(folder):
    program = rt.load(_all_ops(folder / "all_arm.tflite"), rounding="tflm")
    model = generate(program, folder / "all_arm")
    xi, ref = runtime_io(program, model, _int8_inputs(program, 2, seed=4))
    build.build_arm(folder / "all_arm")
    run = build.run_qemu(folder / "all_arm", xi, model.input_size, model.output_size)
    assert np.array_equal(run.outputs, ref) and len(np.unique(ref)) > 10
    sizes = build.section_sizes(folder / "all_arm")
    assert sizes["weights"]["rodata"] == model.weights_bytes == program.flash_bytes
    assert sizes["total"]["bss"] == program.plan_memory().arena_bytes and sizes["total"]["data"] == 0
    assert 0 < sizes["kernels"]["text"] < 10240  # portable + DSP kernels
    assert 168 < run.instructions / len(ref) < 100_000  # 168 outputs per layer; a few hundred instructions each
