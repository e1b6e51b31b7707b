"""edgeflow's int8 reference runtime: run the integers a microcontroller would run.

numpy (and torch's float32 convolution where exact). ``load(path, rounding="onnx" | "tflm") -> Program``
lowers a quantized ONNX file —
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

The program is data (``edgeflow.runtime.ir.Graph``: nodes with their kind, integer/float params
and attributes, tensors with static shapes, dtypes and quantization), produced by a frontend
(``frontends.onnx``; ``frontends.tflite`` for int8 ``.tflite`` files, tflm rounding by default,
bit-exact with LiteRT's reference kernels) and run by one kernel per node (``ops``). ``Program.run(inputs)`` mirrors
``InferenceSession.run(None, feeds)``; ``Program.plan_memory()`` gives the greedy arena (peak RAM);
``Program.profile(hardware, dataset)`` MACs, flash, RAM, latency, energy, accuracy and agreement
with onnxruntime; ``Program.save("m.json")`` writes the IR (+ ``m.npz``), ``load("m.json")`` reads it.

``load`` validates the model before lowering it (``frontends.validate``: opset, scales, zero points,
axes, conv/pool geometry against the weights, outputs); every failure of ``load`` or ``run`` is a
one-line ``RuntimeModelError`` naming the node and attribute. Non-finite (NaN/inf) float inputs to
``Program.run`` are a ``RuntimeModelError`` too.
"""

from __future__ import annotations

from pathlib import Path

from edgeflow.runtime import quant
from edgeflow.runtime.errors import RuntimeModelError, UnsupportedOpError
from edgeflow.runtime.ir import Graph
from edgeflow.runtime.program import Program

__all__ = ["load", "Graph", "Program", "RuntimeModelError", "UnsupportedOpError"]


def load(path: str | Path, rounding: str | None = None) -> Program:
    """Load a quantized ONNX file, an int8 ``.tflite`` file (by extension or its ``TFL3``
    identifier), or a program saved by ``Program.save`` (``.json`` + ``.npz``), as an integer
    ``Program``. ``rounding``: "onnx" or "tflm"; default "tflm" for ``.tflite`` files (bit-equal to
    LiteRT's reference kernels), "onnx" otherwise."""
    from edgeflow.runtime.frontends import tflite

    is_tflite = tflite.is_tflite(path)
    rounding = rounding or ("tflm" if is_tflite else "onnx")
    if rounding not in quant.MODES:
        raise RuntimeModelError(f"rounding must be one of {', '.join(quant.MODES)}, got {rounding!r}")
    try:
        if Path(path).suffix == ".json":
            return Program(Graph.load(path), rounding=rounding)
        if is_tflite:
            return Program(tflite.load(path), rounding=rounding, path=path)
        from edgeflow.runtime.frontends.onnx import load as load_onnx

        return Program(load_onnx(path), rounding=rounding, path=path)
    except RuntimeModelError:
        raise
    except (Exception, MemoryError, RecursionError) as exc:  # anything else: one line, never a raw exception
        raise RuntimeModelError(f"{path}: invalid model ({type(exc).__name__}: {_line(exc)})") from None


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "")[:200]
