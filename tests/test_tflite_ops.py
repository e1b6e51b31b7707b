"""Per-op tests of the .tflite importer against LiteRT's reference kernels (``BUILTIN_REF``).

Each example writes a one-op (or two-op) int8 ``.tflite`` with the ``tflite`` package's builders,
runs it in LiteRT sample by sample and in the runtime (tflm rounding) as one batch, and asserts
bit-equality. Shapes, scales, zero points, strides, padding and fused activations are drawn by
hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeflow.runtime as rt
from tests.runtime_helpers import litert_run, tfl_tensor, tflite_file

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tflite")

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SCALE = st.floats(0.002, 0.3)
ZP = st.integers(-30, 30)
ACT = st.sampled_from([0, 1, 2, 3])  # NONE, RELU, RELU_N1_TO_1, RELU6
N = 6  # samples per example


def _inputs(rng, shapes, dtype=np.int8):
    if np.dtype(dtype).kind == "f":
        return [rng.normal(0, 2, (N,) + tuple(s[1:])).astype(dtype) for s in shapes]
    return [rng.integers(-128, 128, (N,) + tuple(s[1:])).astype(dtype) for s in shapes]


def _check(path, xs):
    ref = litert_run(path, xs)
    prog = rt.load(path)
    out = prog.run(xs if len(xs) > 1 else xs[0])[0]
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
    return ref


def _weights(rng, shape, channels):
    w = rng.integers(-127, 128, shape).astype(np.int8)
    return w, rng.uniform(0.001, 0.02, channels).astype(np.float32)


@st.composite
def conv_case(draw):
    depthwise = draw(st.booleans())
    c = draw(st.integers(1, 4))
    mult = draw(st.integers(1, 2))
    m = c * mult if depthwise else draw(st.integers(1, 5))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(depthwise=depthwise, c=c, m=m, mult=mult, k=k, hw=(draw(st.integers(3, 8)), draw(st.integers(3, 8))),
                stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))), dil=draw(st.integers(1, 2)),
                padding=draw(st.integers(0, 1)), act=draw(ACT), sx=draw(SCALE), zx=draw(ZP), sy=draw(SCALE),
                zy=draw(ZP), seed=draw(st.integers(0, 2**16)))


@SETTINGS
@given(conv_case())
def test_conv_and_depthwise(tmp_path_factory, case):
    rng = np.random.default_rng(case["seed"])
    c, m, (kh, kw), (h, w) = case["c"], case["m"], case["k"], case["hw"]
    wshape = (1, kh, kw, m) if case["depthwise"] else (m, kh, kw, c)
    wq, sw = _weights(rng, wshape, m)
    bias = rng.integers(-3000, 3000, m).astype(np.int32)
    ts = [tfl_tensor("x", [1, h, w, c], np.int8, case["sx"], case["zx"]),
          tfl_tensor("w", wshape, np.int8, sw, [0] * m, data=wq, qdim=3 if case["depthwise"] else 0),
          tfl_tensor("b", [m], np.int32, np.float32(case["sx"]) * sw, [0] * m, data=bias),
          tfl_tensor("y", [1, 0, 0, m], np.int8, case["sy"], case["zy"])]
    eff = [(kh - 1) * case["dil"] + 1, (kw - 1) * case["dil"] + 1]
    out = [(s + st_ - 1) // st_ if case["padding"] == 0 else (s - e) // st_ + 1
           for s, e, st_ in zip((h, w), eff, case["stride"])]
    if min(out) < 1:
        return
    ts[3]["shape"] = [1, out[0], out[1], m]
    opts = {"Padding": case["padding"], "StrideH": case["stride"][0], "StrideW": case["stride"][1],
            "DilationHFactor": case["dil"], "DilationWFactor": case["dil"], "FusedActivationFunction": case["act"]}
    if case["depthwise"]:
        opts["DepthMultiplier"] = case["mult"]
    op = ("DEPTHWISE_CONV_2D", [0, 1, 2], [3], "DepthwiseConv2DOptions", opts) if case["depthwise"] else \
        ("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", opts)
    path = tflite_file(tmp_path_factory.mktemp("conv") / "m.tflite", ts, [op], [0], [3])
    _check(path, _inputs(rng, [[1, h, w, c]]))


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 12), st.booleans(), ACT, SCALE, ZP, SCALE, ZP, st.integers(0, 2**16))
def test_fully_connected(tmp_path_factory, k, n, rank4, act, sx, zx, sy, zy, seed):
    rng = np.random.default_rng(seed)
    wq, sw = _weights(rng, (n, k), 1)
    xshape = [1, 1, 1, k] if rank4 else [1, k]
    ts = [tfl_tensor("x", xshape, np.int8, sx, zx), tfl_tensor("w", [n, k], np.int8, sw, [0], data=wq),
          tfl_tensor("b", [n], np.int32, np.float32(sx) * sw, [0], data=rng.integers(-5000, 5000, n).astype(np.int32)),
          tfl_tensor("y", [1, n], np.int8, sy, zy)]
    path = tflite_file(tmp_path_factory.mktemp("fc") / "m.tflite", ts,
                       [("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions", {"FusedActivationFunction": act})],
                       [0], [3])
    _check(path, _inputs(rng, [xshape]))


@SETTINGS
@given(st.sampled_from(["ADD", "MUL"]), st.sampled_from(["tensor", "const_c", "const_full"]), st.integers(1, 5),
       ACT, SCALE, ZP, SCALE, ZP, SCALE, ZP, st.integers(0, 2**16))
def test_add_and_mul(tmp_path_factory, kind, other, c, act, sa, za, sb, zb, sy, zy, seed):
    rng = np.random.default_rng(seed)
    shape = [1, 3, 4, c]
    bshape = {"tensor": shape, "const_c": [c], "const_full": shape}[other]
    bdata = None if other == "tensor" else rng.integers(-128, 128, bshape).astype(np.int8)
    # a MAX_POOL_2D 1x1 in front keeps the first operand in the runtime's NCHW layout
    ts = [tfl_tensor("a", shape, np.int8, sa, za), tfl_tensor("b", bshape, np.int8, sb, zb, data=bdata),
          tfl_tensor("y", shape, np.int8, sy, zy), tfl_tensor("p", shape, np.int8, sa, za)]
    pool = ("MAX_POOL_2D", [0], [3], "Pool2DOptions", {"Padding": 1, "StrideW": 1, "StrideH": 1, "FilterWidth": 1,
                                                       "FilterHeight": 1})
    opt = "AddOptions" if kind == "ADD" else "MulOptions"
    ops = [pool, (kind, [3, 1], [2], opt, {"FusedActivationFunction": act})]
    inputs = [0, 1] if other == "tensor" else [0]
    path = tflite_file(tmp_path_factory.mktemp("bin") / "m.tflite", ts, ops, inputs, [2])
    _check(path, _inputs(rng, [shape, bshape][:len(inputs)]))


@SETTINGS
@given(st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(0, 1), ACT, SCALE, ZP, st.integers(0, 2**16))
def test_pools(tmp_path_factory, kind, kh, kw, stride, padding, act, s, z, seed):
    rng = np.random.default_rng(seed)
    h, w, c = 5, 6, 3
    out = [(v + stride - 1) // stride if padding == 0 else (v - k) // stride + 1 for v, k in ((h, kh), (w, kw))]
    ts = [tfl_tensor("x", [1, h, w, c], np.int8, s, z), tfl_tensor("y", [1, out[0], out[1], c], np.int8, s, z)]
    path = tflite_file(tmp_path_factory.mktemp("pool") / "m.tflite", ts,
                       [(kind, [0], [1], "Pool2DOptions", {"Padding": padding, "StrideW": stride, "StrideH": stride,
                                                           "FilterWidth": kw, "FilterHeight": kh,
                                                           "FusedActivationFunction": act})], [0], [1])
    _check(path, _inputs(rng, [[1, h, w, c]]))


@SETTINGS
@given(st.integers(2, 30), st.floats(0.01, 1.0), ZP, st.sampled_from([1.0, 0.5, 2.0]), st.integers(0, 2**16))
def test_softmax(tmp_path_factory, n, s, z, beta, seed):
    rng = np.random.default_rng(seed)
    ts = [tfl_tensor("x", [1, n], np.int8, s, z), tfl_tensor("y", [1, n], np.int8, 1 / 256, -128)]
    path = tflite_file(tmp_path_factory.mktemp("sm") / "m.tflite", ts,
                       [("SOFTMAX", [0], [1], "SoftmaxOptions", {"Beta": beta})], [0], [1])
    _check(path, _inputs(rng, [[1, n]]))


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 2, 3, -1]), st.integers(0, 2), st.integers(0, 2),
       SCALE, ZP, st.integers(0, 2**16))
def test_concat_pad_reshape_squeeze(tmp_path_factory, c1, c2, axis, p0, p1, s, z, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = [1, 2, 3, c1], [1, 2, 3, c1]
    ax = axis % 4
    b_shape[ax] = {1: 1, 2: 2, 3: c2}[ax]
    cat = list(a_shape)
    cat[ax] += b_shape[ax]
    padded = [cat[0], cat[1] + p0 + p1, cat[2] + p1, cat[3] + p0]
    flat = int(np.prod(padded))
    pads = np.asarray([[0, 0], [p0, p1], [0, p1], [p0, 0]], dtype=np.int32)
    ts = [tfl_tensor("a", a_shape, np.int8, s, z), tfl_tensor("b", b_shape, np.int8, s, z),
          tfl_tensor("p", a_shape, np.int8, s, z), tfl_tensor("cat", cat, np.int8, s, z),
          tfl_tensor("pads", [4, 2], np.int32, data=pads), tfl_tensor("padded", padded, np.int8, s, z),
          tfl_tensor("shape", [3], np.int32, data=np.asarray([1, flat, 1], np.int32)),
          tfl_tensor("r", [1, flat, 1], np.int8, s, z), tfl_tensor("y", [1, flat], np.int8, s, z)]
    ops = [("MAX_POOL_2D", [0], [2], "Pool2DOptions", {"Padding": 1, "StrideW": 1, "StrideH": 1, "FilterWidth": 1,
                                                       "FilterHeight": 1}),
           ("CONCATENATION", [2, 1], [3], "ConcatenationOptions", {"Axis": axis}),
           ("PAD", [3, 4], [5], None, {}), ("RESHAPE", [5, 6], [7], None, {}),
           ("SQUEEZE", [7], [8], "SqueezeOptions", {"SqueezeDims": [2]})]
    path = tflite_file(tmp_path_factory.mktemp("mv") / "m.tflite", ts, ops, [0, 1], [8])
    _check(path, _inputs(rng, [a_shape, b_shape]))


@SETTINGS
@given(SCALE, ZP, SCALE, ZP, st.integers(0, 2**16))
def test_quantize_requantize_dequantize(tmp_path_factory, s1, z1, s2, z2, seed):
    rng = np.random.default_rng(seed)
    shape = [1, 4, 5, 3]
    ts = [tfl_tensor("x", shape, np.float32), tfl_tensor("q", shape, np.int8, s1, z1),
          tfl_tensor("r", shape, np.int8, s2, z2), tfl_tensor("y", shape, np.float32)]
    ops = [("QUANTIZE", [0], [1], None, {}), ("QUANTIZE", [1], [2], None, {}), ("DEQUANTIZE", [2], [3], None, {})]
    path = tflite_file(tmp_path_factory.mktemp("q") / "m.tflite", ts, ops, [0], [3])
    xs = _inputs(rng, [shape], np.float32)
    xs[0][:, 0, 0, 0] = (np.arange(N) - N // 2 + 0.5) * np.float32(s1)  # exact .5 ties of x / s1
    _check(path, xs)


@SETTINGS
@given(st.booleans(), SCALE, ZP, SCALE, ZP, st.integers(0, 2**16))
def test_mean_over_height_and_width(tmp_path_factory, keep, sx, zx, sy, zy, seed):
    rng = np.random.default_rng(seed)
    shape = [1, 3, 5, 4]
    ts = [tfl_tensor("x", shape, np.int8, sx, zx), tfl_tensor("axes", [2], np.int32, data=np.asarray([1, 2], np.int32)),
          tfl_tensor("y", [1, 1, 1, 4] if keep else [1, 4], np.int8, sy, zy)]
    path = tflite_file(tmp_path_factory.mktemp("mean") / "m.tflite", ts,
                       [("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": keep})], [0], [2])
    _check(path, _inputs(rng, [shape]))


@SETTINGS
@given(st.sampled_from(["LOGISTIC", "TANH", "HARD_SWISH"]), st.floats(0.005, 0.3), st.integers(-60, 60),
       st.floats(0.005, 0.3), st.integers(-60, 60))
def test_activations_on_every_int8_value(tmp_path_factory, kind, sx, zx, sy, zy):
    sy, zy = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}.get(kind, (sy, zy))
    ts = [tfl_tensor("x", [1, 4, 8, 8], np.int8, sx, zx), tfl_tensor("y", [1, 4, 8, 8], np.int8, sy, zy)]
    path = tflite_file(tmp_path_factory.mktemp("act") / "m.tflite", ts, [(kind, [0], [1], None, {})], [0], [1])
    _check(path, [np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 8, 8)])
