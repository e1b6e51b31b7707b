"""Profiler costs (MACs, flash at true bit-width, RAM, hardware estimates, agreement) and the stage."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from tests.runtime_helpers import f32, i8, save, vi


def _model(tmp_path, bits_meta=None):
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, (8, 3, 3, 3)).astype(np.int8)
    fc = rng.integers(-127, 128, (10, 8 * 6 * 6)).astype(np.int8)
    inits = {"s": f32(0.05), "z": i8(0), "w": w, "ws": f32(np.full(8, 0.01)), "wz": np.zeros(8, np.int8),
             "b": np.zeros(8, np.int32), "fc": fc, "fs": f32([0.01]), "fz": i8([0]), "fb": np.zeros(10, np.int32),
             "ys": f32(0.2), "yz": i8(3)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("QLinearConv", ["q", "s", "z", "w", "ws", "wz", "s", "z", "b"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("QGemm", ["f", "s", "z", "fc", "fs", "fz", "fb", "ys", "yz"], ["g"], domain="com.microsoft",
                              transB=1, name="fc"),
             helper.make_node("DequantizeLinear", ["g", "ys", "yz"], ["y"])]
    path = save(nodes, [vi("x", TensorProto.FLOAT, ["N", 3, 8, 8])], [vi("y", TensorProto.FLOAT, None)], inits, tmp_path / "m.onnx")
    if bits_meta:
        m = onnx.load(path)
        helper.set_model_props(m, {"edgeflow.weight_bits": json.dumps(bits_meta)})
        onnx.save(m, path)
    return path


def test_profile_costs_are_exact(tmp_path):
    prof = rt.load(_model(tmp_path)).profile()
    conv, fc = [lp for lp in prof.layers if lp.kind in ("conv", "fully_connected")]
    assert conv.macs == 8 * 6 * 6 * 3 * 3 * 3 and fc.macs == 10 * 288
    assert conv.flash_bytes == 216 + 8 * 4 + 8 * 8       # int8 weights + int32 bias + (mult, shift) per channel
    assert fc.flash_bytes == 2880 + 10 * 4 + 8            # per-tensor: one (mult, shift) pair
    assert prof.macs == conv.macs + fc.macs + 0 and prof.ops == 0  # no pool, add or standalone activation
    assert prof.peak_ram_bytes == 192 + 288               # input int8 (3x8x8=192) + conv out (288), both 16-aligned
    prof4 = rt.load(_model(tmp_path, {"w": 4})).profile()
    conv4 = [lp for lp in prof4.layers if lp.kind == "conv"][0]
    assert conv4.weight_bits == 4 and conv4.flash_bytes == 108 + 32 + 64


def test_profile_with_hardware_and_agreement(tmp_path):
    prog = rt.load(_model(tmp_path))
    x = np.random.default_rng(1).normal(0, 1, (20, 3, 8, 8)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 10, 20)
    prof = prog.profile(hardware="cortex_m4", dataset=(x, y))
    m = prof.metrics()
    assert m["latency_ms"] > 0 and m["energy_uj"] > 0 and m["fits"] == 1.0
    assert m["agreement"] == 100.0 and m["max_lsb_diff"] == 0.0 and m["top1_agreement"] == 100.0
    assert 0 <= m["test_acc"] <= 100
    assert prof.write_csv(tmp_path / "l.csv").read_text().count("\n") == len(prof.layers) + 1


def test_profile_accuracy_is_the_exact_percentage(tmp_path):
    from edgeflow.core.accuracy import percent_correct

    prog = rt.load(_model(tmp_path))
    x = np.random.default_rng(1).normal(0, 1, (21, 3, 8, 8)).astype(np.float32)
    correct = prog.run(x)[0].argmax(1)
    y = np.where(np.arange(21) % 3 == 0, (correct + 1) % 10, correct)  # 14 of 21 right, in batches of 8, 8, 5
    acc = prog.profile(dataset=(x, y), reference=False, batch_size=8).metrics()["test_acc"]
    assert acc == percent_correct(14, 21) == 100.0 * 14 / 21  # what evaluate() reports for 14 of 21: drop 0


def test_profile_stage_logs_metrics_csv_and_plots(tmp_path):
    torch = pytest.importorskip("torch")
    from edgeflow.stages import profile as stage
    from edgeflow.state import State

    prog = rt.load(_model(tmp_path))

    class Deployed(torch.nn.Module):  # the state's model: here the integer program itself, so simulation = deployment
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, t):
            return torch.from_numpy(prog.run(t.numpy())[0])

    model = Deployed()
    x = torch.randn(30, 3, 8, 8)
    y = torch.randint(0, 10, (30,))
    dm = SimpleNamespace(test_dataloader=lambda: [(x[:16], y[:16]), (x[16:], y[16:])])
    from edgeflow.hardware import load

    hw = load("cortex_m7")
    ctx = SimpleNamespace(data=dm, out_dir=tmp_path, hardware=hw, target=lambda name: load(name) if name else hw)
    # the reference accuracy the training side reports for the same predictions (percent_correct of the counts)
    same = rt.load(_model(tmp_path)).profile(dataset=(x.numpy(), y.numpy()), reference=False).accuracy["test_acc"]
    state = State.of(model, (3, 8, 8), 10, reference_metrics={"test_acc": same}).with_artifact("onnx", _model(tmp_path))
    res = stage.run(stage.Config(kind="profile"), state, ctx)
    for k in ("macs", "ops", "flash_bytes", "peak_ram_bytes", "latency_ms", "energy_uj", "fits", "test_acc", "agreement"):
        assert k in res.metrics
    assert res.metrics["test_acc"] == same and res.metrics["acc_drop"] == 0.0
    assert res.metrics["agreement"] == 100.0 and res.metrics["fresh_export"] == 0.0
    assert res.metrics["fakequant_top1_agreement"] == 100.0 and res.metrics["fakequant_test_acc"] == same
    assert all(p.is_file() for p in res.artifacts.values()) and len(res.artifacts) == 3


def test_fakequant_agreement_counts_samples_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from edgeflow.runtime.profiler import fakequant_agreement

    prog = rt.load(_model(tmp_path))
    x = np.random.default_rng(4).normal(0, 1, (37, 3, 8, 8)).astype(np.float32)
    top = prog.run(x)[0].argmax(-1)
    y = np.arange(37) % 10

    class Constant(torch.nn.Module):  # always class 3
        def forward(self, t):
            return torch.nn.functional.one_hot(torch.full((len(t),), 3), 10).float()

    m = fakequant_agreement(prog, Constant(), [(x[:20], y[:20]), (x[20:], y[20:])])
    assert m["fakequant_top1_agreement"] == 100.0 * int((top == 3).sum()) / 37
    assert m["fakequant_test_acc"] == 100.0 * int((y == 3).sum()) / 37
