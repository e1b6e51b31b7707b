"""edgeflow's int8 reference runtime: run the integers a microcontroller would run.

Pure numpy. ``load(path, rounding="onnx" | "tflm") -> Program`` lowers a quantized ONNX file —
QDQ (``DequantizeLinear → op → QuantizeLinear``, e.g. edgeflow's export or onnxruntime's
``quantize_static``) or QOperator (``QLinearConv``, ``QLinearMatMul``, ``QGemm``, ``QLinearAdd``,
``QLinearAveragePool``, ``QLinearGlobalAveragePool``, ``ConvInteger``, ``MatMulInteger``) — to an
integer program: conv (1-D/2-D, strides, padding, dilation, groups, depthwise), fully connected,
add with rescaling, ReLU/ReLU6/Clip as clamps, max/average/global-average pooling,
reshape/flatten/squeeze/unsqueeze/transpose, concat, pad. Float only at the boundary (input
QuantizeLinear, output DequantizeLinear, Softmax).

Quantization spec (details in ``edgeflow.runtime.quant``): ``real = scale · (q − zero_point)``;
int8 activations per tensor; int8 weights per channel or per tensor; int32 biases with scale
``s_in · s_w``. The integer accumulator is exact; only requantization differs between modes:

* ``onnx``: float32 multiplier ``s_in · s_w / s_out``, round half to even — bit-equal to
  onnxruntime's CPU integer kernels (QLinearConv, QGemm, QLinearAdd, pools) with int8
  activations, i.e. a session with ``session.qdqisint8allowed=1`` (``edgeflow.export.ort``; the
  default on ARM — on x86 onnxruntime's default rewrites QDQ pairs to uint8 and leaves residual
  fan-outs in float).
* ``tflm``: Q31 multiplier + shift, double rounding — TFLite Micro / CMSIS-NN; may differ from
  ``onnx`` by ±1 LSB per layer.

``Program.run(inputs)`` mirrors ``InferenceSession.run(None, feeds)``; ``Program.plan_memory()``
gives the greedy arena (peak RAM); ``Program.profile(hardware, dataset)`` MACs, flash, RAM,
latency, energy, accuracy and agreement with onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

from edgeflow.runtime.errors import RuntimeModelError, UnsupportedOpError
from edgeflow.runtime.program import Program

__all__ = ["load", "Program", "RuntimeModelError", "UnsupportedOpError"]


def load(path: str | Path, rounding: str = "onnx") -> Program:
    """Load a quantized ONNX file as an integer ``Program`` (``rounding``: "onnx" or "tflm")."""
    from edgeflow.runtime import quant
    from edgeflow.runtime.loader import lower, read_model

    if rounding not in quant.MODES:
        raise RuntimeModelError(f"rounding must be one of {', '.join(quant.MODES)}, got {rounding!r}")
    model = read_model(path)
    ops, low = lower(model)
    return Program(ops, low.inputs, low.graph_outputs, low.qt, rounding=rounding, path=path, weight_bits=low.weight_bits)
