"""Bad input: one clear line, never a traceback at the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime import RuntimeModelError
from tests.runtime_helpers import f32, i8, save, vi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def qmodel(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("MaxPool", ["q"], ["m"], kernel_shape=[2, 2]),
             helper.make_node("DequantizeLinear", ["m", "s", "z"], ["y"])]
    return save(nodes, [vi("x", TensorProto.FLOAT, ["N", 3, 8, 8])], [vi("y", TensorProto.FLOAT, None)],
                {"s": f32(0.1), "z": i8(0)}, tmp_path / "ok.onnx")


def test_missing_truncated_and_foreign_files(tmp_path, qmodel):
    with pytest.raises(RuntimeModelError, match="no such file"):
        rt.load(tmp_path / "nope.onnx")
    data = qmodel.read_bytes()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("hello, not a model\n" * 10)
    for name in ("trunc.onnx", "text.onnx"):
        with pytest.raises(RuntimeModelError, match="ONNX") as exc:
            rt.load(tmp_path / name)
        assert "\n" not in str(exc.value)


def test_unsupported_op_names_op_and_node(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("Sin", ["d"], ["y"], name="my_sine")]
    path = save(nodes, [vi("x", TensorProto.FLOAT, [1, 4])], [vi("y", TensorProto.FLOAT, None)],
                {"s": f32(0.1), "z": i8(0)}, tmp_path / "sin.onnx")
    with pytest.raises(rt.UnsupportedOpError, match="unsupported op Sin \\(node 'my_sine'\\)"):
        rt.load(path)


def test_wrong_input_shape_dtype_and_names(qmodel):
    prog = rt.load(qmodel)
    assert prog.run(np.zeros((5, 3, 8, 8), np.float32))[0].shape == (5, 3, 7, 7)
    with pytest.raises(RuntimeModelError, match="expected shape \\[\\?, 3, 8, 8\\], got \\[1, 3, 9, 8\\]"):
        prog.run(np.zeros((1, 3, 9, 8), np.float32))
    with pytest.raises(RuntimeModelError, match="expected dtype float32, got float64"):
        prog.run(np.zeros((1, 3, 8, 8)))
    with pytest.raises(RuntimeModelError, match="unknown input name"):
        prog.run({"y": np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(RuntimeModelError, match="rounding"):
        rt.load(qmodel, rounding="banker")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tasks.profile_app", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line(tmp_path, qmodel):
    (tmp_path / "bad.onnx").write_text("garbage")
    for args in [(tmp_path / "bad.onnx",), (tmp_path / "none.onnx",), (qmodel, "hardware=no_such_target"), (qmodel, "colour=red")]:
        r = _cli(*args)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("edgeflow-profile:")


def test_cli_prints_table_with_totals(qmodel):
    r = _cli(qmodel, "hardware=cortex_m4")
    assert r.returncode == 0, r.stderr
    assert "max_pool" in r.stdout and "total" in r.stdout and "peak RAM" in r.stdout and "latency" in r.stdout
