"""The runtime validates a model before it runs it: each corruption of a real QDQ export is a
one-line ``RuntimeModelError`` naming the node/attribute (issue 10, "What was measured" §5)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgeflow import runtime
from edgeflow.runtime import RuntimeModelError
from runtime_helpers import ZOO, zoo_qdq_export


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return zoo_qdq_export("cnn", tmp_path_factory.mktemp("cnn"))


@pytest.fixture(scope="module")
def tcn(tmp_path_factory):
    return zoo_qdq_export("tcn", tmp_path_factory.mktemp("tcn"))


def _node(m, op, k=0):
    return [n for n in m.graph.node if n.op_type == op][k]


def _set_init(m, name, value):
    for i, t in enumerate(m.graph.initializer):
        if t.name == name:
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(value), name))
            return
    raise KeyError(name)


def _init(m, name):
    return numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == name))


def _set_attr(node, name, value):
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _scale(v):
    def f(m):
        q = _node(m, "QuantizeLinear")
        _set_init(m, q.input[1], np.float32(v))
        return q.name, "scale"
    return f


def _wscale(v):
    def f(m):
        dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_q"))
        s = _init(m, dq.input[1]).copy()
        s[0] = v
        _set_init(m, dq.input[1], s)
        return dq.name, "scale"
    return f


def _zp(value):
    def f(m):
        q = _node(m, "QuantizeLinear")
        _set_init(m, q.input[2], value)
        return q.name, "zero point"
    return f


def _opset(v):
    def f(m):
        for o in m.opset_import:
            if o.domain == "":
                o.version = v
        return "", "opset"
    return f


def _conv_attr(name, value):
    def f(m):
        c = _node(m, "Conv")
        _set_attr(c, name, value)
        return c.name, name
    return f


def _q_axis(m):
    q = _node(m, "QuantizeLinear")
    _set_attr(q, "axis", 5)
    return q.name, "axis"


def _no_outputs(m):
    del m.graph.output[:]
    return "", "outputs"


def _wzp_dtype(m):
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_q"))
    _set_init(m, dq.input[2], _init(m, dq.input[2]).astype(np.uint8))
    return dq.name, "zero point"


def _bias_zp(m):
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("bias_q"))
    z = _init(m, dq.input[2]).copy()
    z[0] = 7
    _set_init(m, dq.input[2], z)
    return dq.name, "zero point"


CASES = {
    "scale 0": _scale(0.0), "scale negative": _scale(-0.1), "scale NaN": _scale(np.nan), "scale inf": _scale(np.inf),
    "scale 1e-45": _scale(1e-45), "weight scale NaN": _wscale(np.nan), "weight scale 0": _wscale(0.0),
    "zero point out of range (int32 300)": _zp(np.int32(300)), "zero point wrong dtype (float)": _zp(np.float32(0)),
    "zero point wrong dtype (int16 for int8 activations)": _zp(np.int16(0)),
    "weight zero point of another dtype than the weight": _wzp_dtype, "int32 bias zero point != 0": _bias_zp,
    "opset 1": _opset(1), "opset 99": _opset(99), "Conv dilations=0": _conv_attr("dilations", [0, 0]),
    "Conv strides=0": _conv_attr("strides", [0, 0]), "Conv pads=100000": _conv_attr("pads", [100000] * 4),
    "Conv pads negative": _conv_attr("pads", [-1, 0, 0, 0]),
    "Conv kernel_shape contradicting the weight": _conv_attr("kernel_shape", [5, 5]),
    "Conv strides of the wrong length": _conv_attr("strides", [1, 1, 1]),
    "Conv group=0": _conv_attr("group", 0),
    "Quantize axis=5": _q_axis, "no outputs": _no_outputs,
}


@pytest.mark.parametrize("case", list(CASES))
def test_corruption_is_one_line_error(cnn, tmp_path, case):
    m = onnx.load(str(cnn))
    node, attr = CASES[case](m)
    p = tmp_path / "bad.onnx"
    onnx.save(m, str(p))
    with pytest.raises(RuntimeModelError) as ei:
        runtime.load(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert attr in msg, msg
    if node:
        assert node in msg, msg


def test_tcn_dilated_pads_and_zero_dilation(tcn, tmp_path):
    m = onnx.load(str(tcn))
    c = _node(m, "Conv", 1)
    _set_attr(c, "dilations", [0])
    onnx.save(m, str(tmp_path / "d.onnx"))
    with pytest.raises(RuntimeModelError, match="dilations"):
        runtime.load(tmp_path / "d.onnx")
    m = onnx.load(str(tcn))
    _set_attr(_node(m, "Conv", 1), "pads", [100000, 100000])
    onnx.save(m, str(tmp_path / "p.onnx"))
    with pytest.raises(RuntimeModelError, match="pads"):
        runtime.load(tmp_path / "p.onnx")


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(cnn, tmp_path, cut):
    data = cnn.read_bytes()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(RuntimeModelError) as ei:
        runtime.load(p)
    assert "\n" not in str(ei.value)


def test_corrupted_dims_is_one_line(cnn, tmp_path):
    m = onnx.load(str(cnn))
    t = next(t for t in m.graph.initializer if t.name.endswith("weight_q"))
    t.dims[0] += 3  # raw_data no longer matches the dims
    p = tmp_path / "dims.onnx"
    onnx.save(m, str(p))
    with pytest.raises(RuntimeModelError, match="weight_q"):
        runtime.load(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(cnn, bad):
    prog = runtime.load(cnn)
    x = np.zeros((1, *ZOO["cnn"][0]), np.float32)
    assert np.isfinite(prog.run(x)[0]).all()
    x[0, 0, 3, 4] = bad
    with pytest.raises(RuntimeModelError, match="non-finite"):
        prog.run(x)


def test_valid_export_still_loads(cnn, tcn):
    for p in (cnn, tcn):
        runtime.load(p)
