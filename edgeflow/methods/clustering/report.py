"""What a compressed model weighs: per layer, every storage format, the executable flash and the bytes
at rest (``edgeflow.hardware.storage``), from the model itself.

The layers come from ``edgeflow.hardware.analyze`` (BatchNorm folded, weights at the quantizer's
bits or 32 for float layers, pruning masks applied); a quantized layer's weights are counted as the
integer codes its export stores (``weight_quantizer.quantize_int``), so the figures equal the
profile's on the exported file. Biases count 4 bytes each in every figure (int32 when quantized, float32
otherwise), exactly as the analysis and the runtime's flash count them.

- ``float32_bytes`` = 4 · (weights + biases): the float32 dense model;
- ``flash_bytes`` = Σ (smallest format among those the target's kernels execute, dense always) +
  biases: what the device executes from;
- ``bytes_at_rest`` = Σ (smallest of every format, Huffman included) + biases: what a file or an
  over-the-air update carries;
- ``size_ratio`` = ``float32_bytes / bytes_at_rest``; ``flash_ratio`` = ``float32_bytes / flash_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

FORMAT_COLUMNS = ("dense", "csr", "indexed", "sparse_indexed", "huffman")


def compression_report(model: nn.Module, input_shape: Iterable[int],
                       supported: Iterable[str] = ("dense",)) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """``(rows, totals)``: one row per Conv/Linear layer (``layer, weights, biases, bits,
    unique_weights, sparsity, <format>_bytes`` for ``FORMAT_COLUMNS`` present, ``flash_format``,
    ``flash_bytes``, ``rest_format``, ``rest_bytes``; ``unique_weights`` is empty where no codebook
    format applies) and the totals of the module docstring, plus ``bias_bytes``."""
    from edgeflow.hardware import analyze
    from edgeflow.hardware.storage import at_rest_format, best_format

    supported = tuple(supported)
    cost = analyze(model, tuple(input_shape))
    modules = dict(model.named_modules())
    rows: list[dict[str, Any]] = []
    for layer in cost.layers:
        if not layer.weights:
            continue
        sizes = _integer_storage(modules.get(layer.name), layer.weight_bits) or layer.storage
        flash_fmt, flash = best_format(sizes, supported)
        rest_fmt, rest = at_rest_format(sizes)
        row: dict[str, Any] = {"layer": layer.name, "weights": layer.weights, "biases": layer.biases,
                               "bits": layer.weight_bits, "unique_weights": sizes.get("unique_weights", ""),
                               "sparsity": layer.sparsity}
        row.update({f"{f}_bytes": int(sizes[f]) for f in FORMAT_COLUMNS if f in sizes})
        row.update(flash_format=flash_fmt, flash_bytes=int(flash) + layer.bias_bytes,
                   rest_format=rest_fmt, rest_bytes=int(rest) + layer.bias_bytes)
        rows.append(row)
    float32 = 4 * sum(r["weights"] + r["biases"] for r in rows)
    rest = sum(r["rest_bytes"] for r in rows)
    flash = sum(r["flash_bytes"] for r in rows)
    totals = {
        "float32_bytes": float(float32),
        "bias_bytes": float(4 * sum(r["biases"] for r in rows)),
        "flash_bytes": float(flash),
        "bytes_at_rest": float(rest),
        "size_ratio": float32 / rest if rest else float("nan"),
        "flash_ratio": float32 / flash if flash else float("nan"),
    }
    return rows, totals


@torch.no_grad()
def _integer_storage(module: nn.Module | None, bits: int) -> dict[str, int] | None:
    """Storage of a quantized layer's integer weight codes (None for a float layer)."""
    from edgeflow.hardware.storage import storage_bytes
    from edgeflow.methods.pruning.masks import get_mask

    quantizer = getattr(module, "weight_quantizer", None)
    if quantizer is None or getattr(module, "bn", None) is not None:
        return None
    codes, _ = quantizer.quantize_int(module.weight.detach(), get_mask(module))
    return storage_bytes(codes.cpu().numpy(), bits)


__all__ = ["FORMAT_COLUMNS", "compression_report"]
