"""What a quantized model costs and how it is quantized: sizes, the per-layer table, stage metrics.

Plain data (no files): the ``ptq`` and ``qat`` stages write ``quant_layers.json`` from ``quant_report``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from torch import nn

from edgeflow.methods.quantization.convert import quant_layers, weight_bits_of


def quant_summary(model: nn.Module) -> dict[str, float]:
    """``weight_bits`` (parameter-weighted mean), ``weight_bytes`` (Σ ceil(numel·bits/8) over
    Conv/Linear weights at their true bit-width), ``bias_bytes`` (int32 biases), ``float_weight_bytes``
    (the same weights at 32 bits) and ``size_ratio`` (float / quantized weight bytes)."""
    total_bits = numel = weight_bytes = bias_bytes = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            bits = weight_bits_of(m)
            n = m.weight.numel()
            numel += n
            total_bits += n * bits
            weight_bytes += math.ceil(n * bits / 8)
            if m.bias is not None:
                bias_bytes += 4 * m.bias.numel()
    return {
        "weight_bits": total_bits / numel if numel else 32.0,
        "weight_bytes": int(weight_bytes),
        "bias_bytes": int(bias_bytes),
        "float_weight_bytes": int(4 * numel),
        "size_ratio": (4 * numel) / weight_bytes if weight_bytes else 1.0,
    }


def layer_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per quantized layer: name, type, weight bits / format / method, act bits, fused ReLU."""
    rows = []
    for name, m in quant_layers(model).items():
        wq, aq = m.weight_quantizer, m.act_quantizer
        rows.append({"layer": name, "type": type(m).__name__, "weight_bits": int(wq.bits),
                     "weight_format": wq.format, "per_channel": bool(wq.per_channel),
                     "weight_method": wq.method, "act_bits": int(aq.bits) if aq.enabled else 32,
                     "act_method": aq.method, "fused_relu": bool(m.fused_relu), "params": m.weight.numel()})
    return rows


def quant_report(model: nn.Module, test: Mapping[str, float],
                 float_test_acc: Optional[float] = None) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics of a quantized ``model`` and its per-layer table.

    ``test`` holds the model's ``test_acc`` and ``test_loss``. Metrics: those two, ``float_test_acc``
    and ``acc_drop`` (float − quantized, in points; only when ``float_test_acc`` is given), then the
    ``quant_summary`` values except ``float_weight_bytes``. Table: ``{"layers": layer_table(model),
    **quant_summary(model)}`` (the content of ``quant_layers.json``).
    """
    metrics = {"test_acc": test["test_acc"], "test_loss": test["test_loss"]}
    if float_test_acc is not None:
        metrics["float_test_acc"] = float(float_test_acc)
        metrics["acc_drop"] = float(float_test_acc) - test["test_acc"]
    summary = quant_summary(model)
    metrics.update({k: float(v) for k, v in summary.items() if k != "float_weight_bytes"})
    return metrics, {"layers": layer_table(model), **summary}
