"""onnxruntime sessions configured as edgeflow compares against them, and what they really run.

Every comparison with onnxruntime in edgeflow (export check, profile agreement, tests) opens its
session here, at ORT_ENABLE_ALL (QDQ models only run on integer kernels at EXTENDED or higher)
with ``session.qdqisint8allowed=1`` (the ARM default; see :func:`ort_session`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

INTEGER_OP_TYPES = ("QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QLinearAdd",
                    "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "NhwcQLinearConv",
                    "QLinearMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def ort_session(path: Path | str, level: str = "all", optimized_path: Path | str | None = None,
                int8_allowed: bool = True) -> Any:
    """An onnxruntime CPU session at graph optimization ``level`` (basic | extended | all).

    ``int8_allowed`` sets ``session.qdqisint8allowed=1`` (the default on ARM): onnxruntime then keeps
    int8 activations. Without it, on x86 it rewrites int8 Q/DQ pairs to uint8 one pair at a time and
    skips pairs whose QuantizeLinear feeds several consumers (residual fan-out), which leaves the
    convolutions next to them in float.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if int8_allowed:
        opts.add_session_config_entry("session.qdqisint8allowed", "1")
    opts.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def optimized_op_types(path: Path | str, level: str = "all", int8_allowed: bool = True) -> list[str]:
    """Op types of the graph onnxruntime actually runs (written via ``optimized_model_filepath``)."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        ort_session(path, level, opt, int8_allowed)
        model = onnx.load(str(opt))
    return [n.op_type for n in model.graph.node]


def integer_op_types(path: Path | str, int8_allowed: bool = True) -> list[str]:
    """The integer-kernel ops (QLinearConv, QGemm, ...) in onnxruntime's ORT_ENABLE_ALL graph."""
    return sorted({op for op in optimized_op_types(path, "all", int8_allowed) if op in INTEGER_OP_TYPES})


def float_compute_op_types(path: Path | str, int8_allowed: bool = True) -> list[str]:
    """Conv / Gemm / MatMul / Add nodes onnxruntime still runs in float at ORT_ENABLE_ALL (ideally none)."""
    return [op for op in optimized_op_types(path, "all", int8_allowed) if op in ("Conv", "Gemm", "MatMul", "Add",
                                                                                 "FusedConv", "FusedGemm")]


def run_onnx(path: Path | str, x: Any, batch_size: int = 512, level: str = "all",
             int8_allowed: bool = True) -> np.ndarray:
    """Outputs of the exported model on ``x`` (run in onnxruntime at ``level``)."""
    session = ort_session(path, level, int8_allowed=int8_allowed)
    name = session.get_inputs()[0].name
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    outs = [session.run(None, {name: x[i:i + batch_size].astype(np.float32)})[0]
            for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))


__all__ = ["INTEGER_OP_TYPES", "ort_session", "optimized_op_types", "integer_op_types", "float_compute_op_types",
           "run_onnx"]
