"""ONNX forms of the ops the .tflite importer brought (issue 17 §2), bit-equal to onnxruntime.

Softmax on int8 (QLinearSoftmax, DQ → Softmax → Q), QLinearMul and DQ,DQ → Mul → Q, QLinearSigmoid
and DQ → Sigmoid → Q, batched (3-D) QLinearMatMul / MatMulInteger, per-axis QuantizeLinear /
DequantizeLinear on activations, uint8 activations (QUInt8). Scales and zero points drawn by
hypothesis; onnx rounding must equal onnxruntime (ORT_ENABLE_ALL) bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime import RuntimeModelError
from tests.runtime_helpers import f32, ort_run, save, vi

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SCALE = st.floats(0.005, 0.3)
I8, U8, F = TensorProto.INT8, TensorProto.UINT8, TensorProto.FLOAT
QTYPES = {I8: (np.int8, -20, 20), U8: (np.uint8, 100, 150)}


def _exact(path, feeds):
    ref = ort_run(path, feeds)[0]
    out = rt.load(path).run(feeds)[0]
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)


def _zp(rng, t):
    dt, lo, hi = QTYPES[t]
    return np.asarray(rng.integers(lo, hi), dtype=dt)


def _data(rng, t, shape):
    dt = QTYPES[t][0]
    info = np.iinfo(dt)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dt)


@SETTINGS
@given(st.sampled_from(["Mul", "Sigmoid", "Softmax"]), st.sampled_from([I8, U8]), SCALE, SCALE, SCALE,
       st.integers(0, 2**16))
def test_qdq_mul_sigmoid_softmax(tmp_path_factory, op, t, sa, sb, sy, seed):
    rng = np.random.default_rng(seed)
    dt = QTYPES[t][0]
    if op != "Mul":  # the classifier-style output parameters: 1/256 and the dtype's minimum
        sy, zy = 1 / 256, np.asarray(np.iinfo(dt).min if op == "Softmax" else 0, dtype=dt)
    else:
        zy = _zp(rng, t)
    inits = {"sa": f32(sa), "za": _zp(rng, t), "sb": f32(sb), "zb": _zp(rng, t), "sy": f32(sy), "zy": zy}
    nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["af"])]
    ins, feeds = ["af"], {"a": _data(rng, t, (6, 10))}
    if op == "Mul":
        nodes.append(helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bf"]))
        ins.append("bf")
        feeds["b"] = _data(rng, t, (6, 10))
    nodes += [helper.make_node(op, ins, ["yf"], **({"axis": -1} if op == "Softmax" else {})),
              helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["y"])]
    path = save(nodes, [vi(k, t, list(v.shape)) for k, v in feeds.items()], [vi("y", t, None)], inits,
                tmp_path_factory.mktemp("q") / "m.onnx")
    _exact(path, feeds)


@SETTINGS
@given(st.sampled_from(["QLinearMul", "QLinearSigmoid", "QLinearSoftmax"]), st.sampled_from([I8, U8]), SCALE, SCALE,
       SCALE, st.integers(0, 2**16))
def test_qoperator_mul_sigmoid_softmax(tmp_path_factory, op, t, sa, sb, sy, seed):
    rng = np.random.default_rng(seed)
    dt = QTYPES[t][0]
    feeds = {"a": _data(rng, t, (6, 10))}
    zy = _zp(rng, t) if op == "QLinearMul" else np.asarray(np.iinfo(dt).min, dtype=dt)
    sy = sy if op == "QLinearMul" else 1 / 256
    inits = {"sa": f32(sa), "za": _zp(rng, t), "sy": f32(sy), "zy": zy}
    if op == "QLinearMul":
        feeds["b"] = _data(rng, t, (6, 10))
        inits.update(sb=f32(sb), zb=_zp(rng, t))
        ins = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    else:
        ins = ["a", "sa", "za", "sy", "zy"]
    attrs = {"axis": -1, "opset": 13} if op == "QLinearSoftmax" else {}
    node = helper.make_node(op, ins, ["y"], domain="com.microsoft", **attrs)
    path = save([node], [vi(k, t, list(v.shape)) for k, v in feeds.items()], [vi("y", t, None)], inits,
                tmp_path_factory.mktemp("q") / "m.onnx")
    _exact(path, feeds)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.integers(1, 5), st.booleans(), st.integers(0, 2**16))
def test_batched_matmuls(tmp_path_factory, b, m, k, n, const_b, seed):
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("mm")
    a = _data(rng, I8, (b, m, k))
    w = _data(rng, I8, (k, n) if const_b else (b, k, n))
    inits = {"as": f32(0.05), "az": np.int8(3), "bs": f32(0.04), "bz": np.int8(-2), "ys": f32(0.5), "yz": np.int8(1)}
    feeds = {"a": a}
    if const_b:
        inits["b"] = w
    else:
        feeds["b"] = w
    ins = [vi(k_, I8, list(v.shape)) for k_, v in feeds.items()]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    _exact(save([node], ins, [vi("y", I8, None)], inits, tmp / "q.onnx"), feeds)
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    _exact(save([node], ins, [vi("y", TensorProto.INT32, None)], inits, tmp / "i.onnx"), feeds)


@SETTINGS
@given(st.integers(1, 5), st.sampled_from([I8, U8]), st.integers(0, 2**16))
def test_per_axis_quantize_dequantize_of_activations(tmp_path_factory, c, t, seed):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.01, 0.2, c).astype(np.float32)
    z = np.asarray([_zp(rng, t) for _ in range(c)], dtype=QTYPES[t][0])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1)]
    path = save(nodes, [vi("x", F, [2, c, 3, 3])], [vi("y", F, None)], {"s": s, "z": z},
                tmp_path_factory.mktemp("pa") / "m.onnx")
    x = rng.normal(0, 2, (2, c, 3, 3)).astype(np.float32)
    x[0, :, 0, 0] = (np.arange(c) + 0.5) * s  # exact .5 ties of x / s
    _exact(path, {"x": x})


def test_uint8_qlinearconv(tmp_path):
    rng = np.random.default_rng(1)
    x = _data(rng, U8, (2, 3, 6, 6))
    inits = {"xs": f32(0.02), "xz": np.uint8(128), "w": rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
             "ws": rng.uniform(0.001, 0.01, 4).astype(np.float32), "wz": np.zeros(4, np.int8), "ys": f32(0.3),
             "yz": np.uint8(120), "b": rng.integers(-500, 500, 4).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], pads=[1, 1, 1, 1])
    _exact(save([node], [vi("x", U8, [2, 3, 6, 6])], [vi("y", U8, None)], inits, tmp_path / "u8.onnx"), {"x": x})


def test_per_axis_activation_into_an_op_is_refused_in_one_line(tmp_path):
    s = np.asarray([0.1, 0.2], np.float32)
    z = np.zeros(2, np.int8)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, name="qx"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], axis=1),
             helper.make_node("Relu", ["d"], ["y"])]
    path = save(nodes, [vi("x", F, [1, 2, 3])], [vi("y", F, None)], {"s": s, "z": z}, tmp_path / "m.onnx")
    with pytest.raises(RuntimeModelError) as info:
        rt.load(path)
    assert "\n" not in str(info.value) and "Relu" in str(info.value)


@SETTINGS
@given(st.sampled_from([I8, U8]), SCALE, SCALE, st.integers(0, 2**16))
def test_qdq_hard_swish_on_every_input_value(tmp_path_factory, t, sx, sy, seed):
    """DQ → HardSwish → Q over all 256 input values: onnx mode bit-equal to onnxruntime (its float32
    path, true-division QuantizeLinear); tflm mode TFLite's fixed-point HARD_SWISH (within one step
    of the float path)."""
    rng = np.random.default_rng(seed)
    dt = QTYPES[t][0]
    if sx / (128 * sy) >= 1:  # TFLite's kernel needs s_x / (128 s_y) < 1 (one-line error otherwise)
        sy = sx / 64
    inits = {"sx": f32(sx), "zx": _zp(rng, t), "sy": f32(sy), "zy": _zp(rng, t)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xf"]), helper.make_node("HardSwish", ["xf"], ["yf"]),
             helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["y"])]
    info = np.iinfo(dt)
    feeds = {"x": np.arange(info.min, int(info.max) + 1).astype(dt).reshape(1, 256)}
    path = save(nodes, [vi("x", t, [1, 256])], [vi("y", t, None)], inits, tmp_path_factory.mktemp("q") / "m.onnx")
    _exact(path, feeds)
    onnx_out, tflm_out = (rt.load(path).run(feeds, rounding=m)[0].astype(np.int64) for m in ("onnx", "tflm"))
    assert np.abs(onnx_out - tflm_out).max() <= 1
