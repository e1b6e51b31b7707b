"""The runtime's IR: static shapes, exact serialisation, bit-equal runs, no unpickling."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime import RuntimeModelError, ir
from tests.runtime_helpers import ZOO, f32, i8, save, vi, zoo_qdq_export


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    return {name: zoo_qdq_export(name, out) for name in ZOO}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_ir_round_trips_and_runs_bit_equal(zoo_files, tmp_path, name):
    prog = rt.load(zoo_files[name])
    again = ir.Graph.from_dict(prog.ir.to_dict())
    assert ir.equal(again, prog.ir)
    saved = prog.save(tmp_path / f"{name}.json")
    assert saved.with_suffix(".npz").is_file()
    x = np.random.default_rng(5).normal(0, 1, (8, *ZOO[name][0])).astype(np.float32)
    for rounding in ("onnx", "tflm"):
        loaded = rt.load(saved, rounding=rounding)
        assert ir.equal(loaded.ir, prog.ir)
        want = rt.load(zoo_files[name], rounding=rounding).run(x)
        got = loaded.run(x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
    loaded = rt.load(saved)
    assert loaded.path is None  # no ONNX file behind it: costs only, no onnxruntime reference
    assert loaded.profile("cortex_m4").metrics() == prog.profile("cortex_m4").metrics()


@pytest.mark.parametrize("name", list(ZOO))
def test_static_shapes_and_dtypes_equal_the_run(zoo_files, name):
    prog = rt.load(zoo_files[name])
    x = np.random.default_rng(6).normal(0, 1, (1, *ZOO[name][0])).astype(np.float32)
    _, env = prog.run(x, keep=True)
    assert set(env) == set(prog.ir.tensors)
    for tensor_name, value in env.items():
        spec = prog.ir.tensors[tensor_name]
        assert spec.shape == value.shape, tensor_name
        assert spec.dtype == value.dtype, tensor_name
        assert (spec.scale is not None) == (value.dtype.kind in "iu")
    _, env4 = prog.run(np.repeat(x, 4, axis=0), keep=True)  # the batch is the leading dim throughout
    assert all(v.shape == (4,) + prog.ir.tensors[n].shape[1:] for n, v in env4.items())


def test_equal_sees_one_changed_weight(zoo_files):
    graph = rt.load(zoo_files["cnn"]).ir
    d = graph.to_dict()
    conv = next(n for n in d["nodes"] if n["kind"] == "conv")
    w = conv["params"]["weight"].copy()
    w.flat[0] = w.flat[0] + 1 if w.flat[0] < 127 else w.flat[0] - 1
    conv["params"] = {**conv["params"], "weight": w}
    assert not ir.equal(ir.Graph.from_dict(d), graph)
    conv["params"] = {**conv["params"], "weight": w.astype(np.int16)}
    assert not ir.equal(ir.Graph.from_dict(d), graph)


class _Touch:
    """Unpickling this object would create ``path`` (proof that nothing was unpickled)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_load_refuses_pickled_object_arrays(zoo_files, tmp_path):
    saved = rt.load(zoo_files["cnn"]).save(tmp_path / "cnn.json")
    marker = tmp_path / "unpickled"
    with np.load(saved.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(iter(arrays))
    arrays[key] = np.array([_Touch(marker)], dtype=object)
    np.savez(saved.with_suffix(".npz"), allow_pickle=True, **arrays)
    with pytest.raises(RuntimeModelError, match="allow_pickle"):
        rt.load(saved)
    assert not marker.exists()
    d = rt.load(zoo_files["cnn"]).ir.to_dict()
    next(n for n in d["nodes"] if "weight" in n["params"])["params"]["weight"] = np.array([1, "a"], dtype=object)
    with pytest.raises(RuntimeModelError, match="numeric numpy array"):
        ir.Graph.from_dict(d)


def test_load_refuses_other_formats_and_missing_arrays(zoo_files, tmp_path):
    saved = rt.load(zoo_files["cnn"]).save(tmp_path / "cnn.json")
    d = json.loads(saved.read_text())
    d["format"] = "something/else"
    (tmp_path / "other.json").write_text(json.dumps(d))
    with pytest.raises(RuntimeModelError, match="no such file"):
        rt.load(tmp_path / "other.json")
    saved.with_suffix(".npz").rename(tmp_path / "other.npz")
    with pytest.raises(RuntimeModelError, match="not an edgeflow runtime program"):
        rt.load(tmp_path / "other.json")
    with pytest.raises(RuntimeModelError, match="no such file"):
        rt.load(saved)
    d["format"] = ir.FORMAT
    d["nodes"][0]["params"] = {"scale": "no.such.array"}
    (tmp_path / "other.json").write_text(json.dumps(d))
    with pytest.raises(RuntimeModelError, match="missing"):
        rt.load(tmp_path / "other.json")


def test_symbolic_dims_give_no_static_shapes_until_given(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("MaxPool", ["q"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("DequantizeLinear", ["m", "s", "z"], ["y"])]
    path = save(nodes, [vi("x", TensorProto.FLOAT, ["N", 3, "H", "W"])], [vi("y", TensorProto.FLOAT, None)],
                {"s": f32(0.1), "z": i8(0)}, tmp_path / "sym.onnx")
    prog = rt.load(path)
    assert all(t.shape is None for t in prog.ir.tensors.values())
    assert prog.ir.inputs[0].shape == (None, 3, None, None)
    with pytest.raises(RuntimeModelError, match="symbolic dimensions"):
        prog.plan_memory()
    assert prog.shapes({"x": (1, 3, 8, 6)}) == {"x": (1, 3, 8, 6), "q": (1, 3, 8, 6), "m": (1, 3, 4, 3),
                                                "y": (1, 3, 4, 3)}
    assert prog.plan_memory({"x": (1, 3, 8, 6)}).arena_bytes == 144 + 48  # q (144 B) and m (36 → 48 B) both live
    assert prog.run(np.zeros((2, 3, 8, 6), np.float32))[0].shape == (2, 3, 4, 3)
