"""Per-op tests of the int8 reference runtime against onnxruntime (ORT_ENABLE_ALL).

onnx rounding must be bit-equal; tflm rounding within ±1 LSB (each op fed the same input).
Shapes, scales and zero points are drawn by hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from tests.runtime_helpers import f32, i8, ort_run, save, vi

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
I8 = TensorProto.INT8


def _check(path, feeds, tflm_tol=1, exact=True):
    ref = ort_run(path, feeds)
    prog = rt.load(path)
    out = prog.run(feeds)
    for r, o in zip(ref, out):
        assert r.shape == o.shape and r.dtype == o.dtype
        if exact:
            np.testing.assert_array_equal(o, r)
    out_t = rt.load(path, rounding="tflm").run(feeds)
    for r, o in zip(ref, out_t):
        assert np.abs(r.astype(np.int64) - o.astype(np.int64)).max(initial=0) <= tflm_tol
    return ref, out


@st.composite
def conv_case(draw, nd=2):
    g = draw(st.sampled_from(["normal", "depthwise", "grouped"]))
    c = draw(st.integers(1, 6)) * (2 if g == "grouped" else 1)
    group = {"normal": 1, "depthwise": c, "grouped": 2}[g]
    m = c if g == "depthwise" else draw(st.integers(1, 8)) * group
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(2 * nd))
    sp = tuple(draw(st.integers(max(1, (k[i] - 1) * d[i] + 1), 9)) for i in range(nd))
    seed = draw(st.integers(0, 2**31 - 1))
    per_channel = draw(st.booleans())
    return c, m, group, k, s, d, p, sp, seed, per_channel


def _qlinearconv(tmp_path, c, m, group, k, s, d, p, sp, seed, per_channel, batch=2):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (batch, c, *sp)).astype(np.int8)
    w = rng.integers(-127, 128, (m, c // group, *k)).astype(np.int8)
    sx = f32(rng.uniform(1e-3, 0.1))
    sw = f32(rng.uniform(1e-3, 0.05, m if per_channel else 1))
    kk = (c // group) * int(np.prod(k))
    sy = f32(sx * sw.mean() * np.sqrt(kk) * rng.uniform(20, 80))
    b = rng.integers(-3000, 3000, m).astype(np.int32)
    inits = {"xs": sx, "xz": i8(rng.integers(-30, 30)), "w": w, "ws": sw, "wz": np.zeros(sw.shape, np.int8),
             "ys": sy, "yz": i8(rng.integers(-20, 20)), "b": b}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            strides=list(s), pads=list(p), dilations=list(d), group=group, kernel_shape=list(k))
    path = save([node], [vi("x", I8, list(x.shape))], [vi("y", I8, None)], inits, tmp_path / "conv.onnx")
    return path, {"x": x}


@SETTINGS
@given(conv_case(2))
def test_qlinearconv_2d(tmp_path_factory, case):
    path, feeds = _qlinearconv(tmp_path_factory.mktemp("c"), *case)
    _check(path, feeds)


@SETTINGS
@given(conv_case(1))
def test_qlinearconv_1d(tmp_path_factory, case):
    path, feeds = _qlinearconv(tmp_path_factory.mktemp("c"), *case)
    _check(path, feeds)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 300), st.integers(1, 30), st.booleans(), st.integers(0, 2**31 - 1))
def test_qgemm_and_qlinearmatmul(tmp_path_factory, n, kdim, m, per_channel, seed):
    tmp = tmp_path_factory.mktemp("g")
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (n, kdim)).astype(np.int8)
    w = rng.integers(-127, 128, (m, kdim)).astype(np.int8)
    sa, sw = f32(rng.uniform(1e-3, 0.1)), f32(rng.uniform(1e-3, 0.05, m if per_channel else 1))
    sy = f32(sa * sw.mean() * np.sqrt(kdim) * rng.uniform(20, 80))
    inits = {"as": sa, "az": i8(rng.integers(-30, 30)), "w": w, "ws": sw, "wz": np.zeros(sw.shape, np.int8),
             "b": rng.integers(-3000, 3000, m).astype(np.int32), "ys": sy, "yz": i8(rng.integers(-20, 20)), "wt": w.T.copy()}
    g = helper.make_node("QGemm", ["a", "as", "az", "w", "ws", "wz", "b", "ys", "yz"], ["y"], domain="com.microsoft", transB=1)
    path = save([g], [vi("a", I8, [n, kdim])], [vi("y", I8, None)], inits, tmp / "qgemm.onnx")
    _check(path, {"a": a})
    if not per_channel:
        mm = helper.make_node("QLinearMatMul", ["a", "as", "az", "wt", "ws", "wz", "ys", "yz"], ["y"])
        path = save([mm], [vi("a", I8, [n, kdim])], [vi("y", I8, None)], inits, tmp / "qmm.onnx")
        _check(path, {"a": a})


@SETTINGS
@given(st.sampled_from(["same", "scalar", "channel"]), st.integers(1, 5), st.integers(1, 70), st.integers(0, 2**31 - 1))
def test_qlinearadd(tmp_path_factory, bshape, c, hw, seed):
    tmp = tmp_path_factory.mktemp("a")
    rng = np.random.default_rng(seed)
    shape_a = (2, c, hw)
    shape_b = {"same": shape_a, "scalar": (1,), "channel": (1, c, 1)}[bshape]
    a = rng.integers(-128, 128, shape_a).astype(np.int8)
    b = rng.integers(-128, 128, shape_b).astype(np.int8)
    inits = {"as": f32(rng.uniform(1e-3, 0.1)), "az": i8(rng.integers(-128, 128)), "bs": f32(rng.uniform(1e-3, 0.1)),
             "bz": i8(rng.integers(-128, 128)), "cs": f32(rng.uniform(1e-3, 0.2)), "cz": i8(rng.integers(-128, 128))}
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"], domain="com.microsoft")
    path = save([node], [vi("a", I8, list(shape_a)), vi("b", I8, list(shape_b))], [vi("y", I8, None)], inits, tmp / "add.onnx")
    _check(path, {"a": a, "b": b})


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_qlinear_global_average_pool(tmp_path_factory, c, h, w, seed):
    tmp = tmp_path_factory.mktemp("p")
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (3, c, h, w)).astype(np.int8)
    sx = rng.uniform(1e-3, 0.1)
    inits = {"xs": f32(sx), "xz": i8(rng.integers(-128, 128)), "ys": f32(sx * rng.uniform(0.3, 3)), "yz": i8(rng.integers(-128, 128))}
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", channels_last=0)
    path = save([node], [vi("x", I8, list(x.shape))], [vi("y", I8, None)], inits, tmp / "gap.onnx")
    _check(path, {"x": x})


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.booleans(), st.integers(0, 2**31 - 1))
def test_qlinear_average_pool_and_maxpool(tmp_path_factory, kh, kw, s, p, include_pad, seed):
    tmp = tmp_path_factory.mktemp("p")
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, 3, 7, 6)).astype(np.int8)
    sx = rng.uniform(1e-3, 0.1)
    pads = [p if kh > p else 0, p if kw > p else 0] * 2
    inits = {"xs": f32(sx), "xz": i8(rng.integers(-128, 128)), "ys": f32(sx * rng.uniform(0.5, 2)), "yz": i8(rng.integers(-128, 128))}
    node = helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft",
                            kernel_shape=[kh, kw], strides=[s, s], pads=pads, count_include_pad=int(include_pad))
    path = save([node], [vi("x", I8, list(x.shape))], [vi("y", I8, None)], inits, tmp / "ap.onnx")
    _check(path, {"x": x})
    mp = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[kh, kw], strides=[s, s], pads=pads)
    path = save([mp], [vi("x", I8, list(x.shape))], [vi("y", I8, None)], {}, tmp / "mp.onnx")
    _check(path, {"x": x}, tflm_tol=0)


def test_conv_integer_and_matmul_integer(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 3, 8, 8)).astype(np.uint8)
    w = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], pads=[1, 1, 1, 1])
    path = save([node], [vi("x", TensorProto.UINT8, list(x.shape))], [vi("y", TensorProto.INT32, None)],
                {"w": w, "xz": np.uint8(131)}, tmp_path / "ci.onnx")
    np.testing.assert_array_equal(rt.load(path).run(x)[0], ort_run(path, {"x": x})[0])
    a = rng.integers(0, 256, (5, 40)).astype(np.uint8)
    b = rng.integers(-128, 128, (40, 7)).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b", "az"], ["y"])
    path = save([node], [vi("a", TensorProto.UINT8, [5, 40])], [vi("y", TensorProto.INT32, None)],
                {"b": b, "az": np.uint8(100)}, tmp_path / "mi.onnx")
    np.testing.assert_array_equal(rt.load(path).run(a)[0], ort_run(path, {"a": a})[0])


def _qdq(name, scale, zp):
    """Q then DQ of tensor ``name`` with scale/zp initializers ``name_s``/``name_z``."""
    return [helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
            helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"])], \
        {f"{name}_s": f32(scale), f"{name}_z": i8(zp)}


@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_qdq_conv_with_fused_activation(tmp_path, act):
    """Float in → Q → DQ → Conv(+Relu/Clip) → Q → DQ → float out, as QDQ exporters write it."""
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    sw = f32(rng.uniform(0.005, 0.02, 6))
    nodes, inits = _qdq("x", 0.02, 3)
    inits.update({"w": w, "w_s": sw, "w_z": np.zeros(6, np.int8), "b": rng.integers(-500, 500, 6).astype(np.int32),
                  "b_s": f32(0.02) * sw, "b_z": np.zeros(6, np.int32), "y_s": f32(0.03), "y_z": i8(-128 if act != "none" else 5),
                  "lo": f32(0.0), "hi": f32(6.0)})
    nodes += [helper.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["w_dq"], axis=0),
              helper.make_node("DequantizeLinear", ["b", "b_s", "b_z"], ["b_dq"], axis=0),
              helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["c"], pads=[1, 1, 1, 1])]
    last = "c"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
        last = "r"
    elif act == "relu6":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["r"]))
        last = "r"
    nodes += [helper.make_node("QuantizeLinear", [last, "y_s", "y_z"], ["y_q"]),
              helper.make_node("DequantizeLinear", ["y_q", "y_s", "y_z"], ["y"])]
    path = save(nodes, [vi("x", TensorProto.FLOAT, [2, 3, 10, 10])], [vi("y", TensorProto.FLOAT, None)], inits, tmp_path / "qdq.onnx")
    x = rng.normal(0, 1, (2, 3, 10, 10)).astype(np.float32)
    ref, out = _check(path, {"x": x})
    prog = rt.load(path)
    assert [op.kind for op in prog.ops] == ["quantize", "conv", "dequantize"]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "Reshape", "Transpose", "Concat", "Pad", "Relu", "Softmax"])
def test_qdq_data_movement_and_pools(tmp_path, op):
    rng = np.random.default_rng(2)
    nodes, inits = _qdq("x", 0.05, -7)
    inits.update({"y_s": f32(0.05 if op != "AveragePool" else 0.04), "y_z": i8(-7 if op not in ("AveragePool", "Concat") else 2),
                  "shape": np.array([2, -1], np.int64), "pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64)})
    extra = {
        "MaxPool": helper.make_node("MaxPool", ["x_dq"], ["o"], kernel_shape=[2, 2], strides=[2, 2]),
        "AveragePool": helper.make_node("AveragePool", ["x_dq"], ["o"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        "Reshape": helper.make_node("Reshape", ["x_dq", "shape"], ["o"]),
        "Transpose": helper.make_node("Transpose", ["x_dq"], ["o"], perm=[0, 2, 3, 1]),
        "Concat": helper.make_node("Concat", ["x_dq", "x_dq"], ["o"], axis=1),
        "Pad": helper.make_node("Pad", ["x_dq", "pads"], ["o"]),
        "Relu": helper.make_node("Relu", ["x_dq"], ["o"]),
        "Softmax": helper.make_node("Softmax", ["x_dq"], ["y"], axis=-1),
    }[op]
    nodes.append(extra)
    if op != "Softmax":
        nodes += [helper.make_node("QuantizeLinear", ["o", "y_s", "y_z"], ["y_q"]),
                  helper.make_node("DequantizeLinear", ["y_q", "y_s", "y_z"], ["y"])]
    path = save(nodes, [vi("x", TensorProto.FLOAT, [2, 4, 6, 6])], [vi("y", TensorProto.FLOAT, None)], inits, tmp_path / "m.onnx")
    x = rng.normal(0, 2, (2, 4, 6, 6)).astype(np.float32)
    ref = ort_run(path, {"x": x})[0]
    out = rt.load(path).run(x)[0]
    if op == "Softmax":
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(out, ref)
        out_t = rt.load(path, rounding="tflm").run(x)[0]
        assert np.abs(out_t - ref).max() <= 0.05 + 1e-6  # ±1 LSB


def test_requant_helpers_match_tflm_reference_values():
    from edgeflow.runtime import quant

    m, sh = quant.quantize_multiplier(np.array([0.5, 0.25, 1.5, 0.0003]))
    assert m.tolist()[:3] == [1 << 30, 1 << 30, 3 << 29] and sh.tolist()[:3] == [0, -1, 1]
    assert abs(m[3] * 2.0 ** (sh[3] - 31) - 0.0003) < 1e-12
    # SaturatingRoundingDoublingHighMul / RoundingDivideByPOT on hand-computed values
    # x * 0.25 with double rounding: 5 * 0.25 = 1.25 -> 2.5 -> 3 (high mul) -> 1.5 -> 2 (shift)
    assert quant.multiply_by_quantized_multiplier(np.array([3, -3, 5, -5]), 1 << 30, -1).tolist() == [1, -1, 2, -1]
    assert quant.multiply_by_quantized_multiplier(np.array([6, -6, 2, -2]), 1 << 30, -1).tolist() == [2, -2, 1, -1]
    assert quant.rounding_divide_by_pot(np.array([5, -5, 6, -6, 7]), 2).tolist() == [1, -1, 2, -2, 2]
    # onnx requantization rounds half to even
    assert quant.requantize_onnx(np.array([1, 3, 5, -1, -3]), np.float32(0.5), 0, np.int8).tolist() == [0, 2, 2, 0, -2]
