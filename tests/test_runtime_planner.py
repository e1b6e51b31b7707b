"""Arena planner on hand-computable lifetimes, and on real programs (MLPerf Tiny arena sizes)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime.planner import Buffer, greedy_plan
from tests.runtime_helpers import f32, i8, save, vi


def test_greedy_reuses_memory_of_dead_tensors():
    plan = greedy_plan([Buffer("a", 100, 0, 1), Buffer("b", 50, 1, 2), Buffer("c", 100, 2, 3)])
    off = {b.name: b.offset for b in plan.buffers}
    assert off == {"a": 0, "c": 0, "b": 112}  # sizes aligned to 16: 112, 64, 112
    assert plan.arena_bytes == 176


def test_greedy_first_fit_reproduces_tflm_fragmentation():
    # MobileNetV1-0.25 @ 96x96 head: input, conv1, dw1, pw1 — TFLM's greedy arena is 63.0 KiB, not 54 KiB
    bufs = [Buffer("in", 27648, 0, 1), Buffer("c1", 18432, 1, 2), Buffer("dw1", 18432, 2, 3), Buffer("pw1", 36864, 3, 4)]
    plan = greedy_plan(bufs)
    assert {b.name: b.offset for b in plan.buffers} == {"pw1": 0, "in": 0, "c1": 27648, "dw1": 46080}
    assert plan.arena_bytes == 64512
    assert max(u[0] for u in plan.usage()) == 55296  # live bytes never exceed 54 KiB


def test_program_plan_residual_and_views(tmp_path):
    """x(16x8x8=1024 B) → conv a → conv b → add(a, x) → flatten(view): x lives until the add."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (16, 16, 1, 1)).astype(np.int8)
    inits = {"s": f32(0.05), "z": i8(0), "w": w, "ws": f32([0.01]), "wz": i8([0])}
    nodes = [helper.make_node("QLinearConv", ["x", "s", "z", "w", "ws", "wz", "s", "z"], ["a"]),
             helper.make_node("QLinearConv", ["a", "s", "z", "w", "ws", "wz", "s", "z"], ["b"]),
             helper.make_node("QLinearAdd", ["b", "s", "z", "x", "s", "z", "s", "z"], ["c"], domain="com.microsoft"),
             helper.make_node("Flatten", ["c"], ["y"])]
    path = save(nodes, [vi("x", TensorProto.INT8, [1, 16, 8, 8])], [vi("y", TensorProto.INT8, None)], inits, tmp_path / "r.onnx")
    prog = rt.load(path)
    plan = prog.plan_memory()
    # x, a, b live at the same time at the second conv (3 KiB); c reuses a's slot; y is a view of c
    assert plan.arena_bytes == 3 * 1024
    assert len(plan.buffers) == 4
    assert prog.run(np.zeros((1, 16, 8, 8), np.int8))[0].shape == (1, 1024)
