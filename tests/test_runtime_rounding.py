"""Rounding that tests can see: scales chosen so that exact .5 ties occur in requantization.

onnx mode against onnxruntime (round half to even) on QLinearConv and QGemm; tflm mode against
LiteRT's reference kernels on CONV_2D (double rounding: half away from zero) and FULLY_CONNECTED
(single rounding: half away from zero). Each test also checks that ties occur and that the other rounding
rule would give a different answer, so a swapped rounding function cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime import quant
from tests.runtime_helpers import f32, i8, litert_run, ort_run, save, tfl_tensor, tflite_file, vi

I8 = TensorProto.INT8


def _ties(acc: np.ndarray, m: np.ndarray) -> tuple[int, int]:
    """(exact .5 ties of acc·m, of which negative) for multipliers m that are powers of two."""
    v = acc.astype(np.float64) * m
    tie = np.abs(v - np.floor(v)) == 0.5
    return int(tie.sum()), int((tie & (v < 0)).sum())


@pytest.mark.parametrize("op", ["QLinearConv", "QGemm"])
def test_onnx_ties_round_half_to_even_like_onnxruntime(tmp_path, op):
    rng = np.random.default_rng(5)
    c, m = 6, 4
    x = rng.integers(-128, 128, (8, c, 5, 5) if op == "QLinearConv" else (200, c)).astype(np.int8)
    w = rng.integers(-2, 3, (m, c, 1, 1) if op == "QLinearConv" else (m, c)).astype(np.int8)  # small: few saturate
    sw = f32([0.5, 0.25, 0.125, 1.0])  # s_x · s_w / s_y = 1/8, 1/16, 1/32, 1/4: exact multipliers, many ties
    inits = {"xs": f32(0.5), "xz": i8(3), "w": w, "ws": sw, "wz": np.zeros(m, np.int8), "ys": f32(2.0), "yz": i8(-2),
             "b": rng.integers(-40, 40, m).astype(np.int32)}
    if op == "QLinearConv":
        node = helper.make_node(op, ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], kernel_shape=[1, 1])
    else:
        node = helper.make_node(op, ["x", "xs", "xz", "w", "ws", "wz", "b", "ys", "yz"], ["y"], domain="com.microsoft",
                                transB=1)
    path = save([node], [vi("x", I8, list(x.shape))], [vi("y", I8, None)], inits, tmp_path / "t.onnx")
    ref = ort_run(path, {"x": x})[0]
    out = rt.load(path).run({"x": x})[0]
    np.testing.assert_array_equal(out, ref)
    xc = x.astype(np.int64) - 3
    wm = w.reshape(m, c).astype(np.int64)
    acc = np.einsum("nchw,mc->nmhw", xc, wm) if op == "QLinearConv" else xc @ wm.T
    axis = 1 if op == "QLinearConv" else -1
    shape = [1] * acc.ndim
    shape[axis] = m
    acc = acc + inits["b"].reshape(shape)
    mult = (0.25 * sw.astype(np.float64)).reshape(shape)
    ties, _ = _ties(acc, mult)
    assert ties > 50
    half_up = np.clip(np.floor(acc * mult + 0.5) - 2, -128, 127)
    assert int((half_up != ref).sum()) > 20  # round-half-up would not be onnxruntime


def _tflite_tie_model(tmp_path, kind, rng):
    c, m = 6, 4
    sw = np.asarray([0.5, 0.25, 0.125, 1.0], np.float32)
    if kind == "CONV_2D":
        w = rng.integers(-2, 3, (m, 1, 1, c)).astype(np.int8)
        xshape, yshape = [1, 5, 5, c], [1, 5, 5, m]
        opts = ("Conv2DOptions", {"Padding": 1, "StrideW": 1, "StrideH": 1})
        wscale, wzp = sw, [0] * m
    else:
        w = rng.integers(-2, 3, (m, c)).astype(np.int8)
        xshape, yshape = [1, c], [1, m]
        opts = ("FullyConnectedOptions", {})
        sw = sw[:1]
        wscale, wzp = sw, [0]
    b = rng.integers(-40, 40, m).astype(np.int32)
    ts = [tfl_tensor("x", xshape, np.int8, 0.5, 3), tfl_tensor("w", w.shape, np.int8, wscale, wzp, data=w),
          tfl_tensor("b", [m], np.int32, 0.5 * wscale, [0] * len(wscale), data=b),
          tfl_tensor("y", yshape, np.int8, 2.0, -2)]
    path = tflite_file(tmp_path / f"{kind}.tflite", ts, [(kind, [0, 1, 2], [3], *opts)], [0], [3])
    return path, w.reshape(m, c).astype(np.int64), b, np.broadcast_to(0.25 * sw.astype(np.float64), (m,)), xshape


@pytest.mark.parametrize("kind", ["CONV_2D", "FULLY_CONNECTED"])
def test_tflm_ties_match_litert(tmp_path, kind):
    pytest.importorskip("ai_edge_litert")
    rng = np.random.default_rng(6)
    path, w, b, mult, xshape = _tflite_tie_model(tmp_path, kind, rng)
    x = rng.integers(-128, 128, (40 if kind == "CONV_2D" else 400,) + tuple(xshape[1:])).astype(np.int8)
    ref = litert_run(path, x)
    np.testing.assert_array_equal(rt.load(path).run(x)[0], ref)
    acc = (x.astype(np.int64) - 3) @ w.T + b  # channels last in both forms
    ties, negative = _ties(acc, mult)
    assert ties > 50 and negative > 10
    m_q, shift = quant.quantize_multiplier(mult)
    double = quant.multiply_by_quantized_multiplier(acc, m_q, shift)
    single = quant.multiply_by_quantized_multiplier_single(acc, m_q, shift)
    assert int((double != single).sum()) > 10  # ties where SRDHM rounds before the shift: double rounding
    other = single if kind == "CONV_2D" else double
    assert int((np.clip(other - 2, -128, 127).reshape(ref.shape) != ref).sum()) > 0
