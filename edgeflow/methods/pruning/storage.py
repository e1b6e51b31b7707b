"""Per-layer storage accounting of pruned weights, via ``edgeflow.hardware.storage``.

For every prunable layer: weight count, sparsity, bit-width (``weight_quantizer.bits`` if the layer
is quantized, else 32) and the bytes of the masked weight in each format that
``edgeflow.hardware.storage.storage_bytes(weight, bits)`` knows (dense, CSR, CSC, N:M with indices),
plus the best one among the formats the target supports. The weight is viewed as rows
``[O, kh*kw*I]`` in channels-last order, the block layout of :mod:`.nm`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from edgeflow.methods.quantization.convert import weight_bits_of

from .masks import get_mask, layer_sparsity, prunable_layers


@torch.no_grad()
def storage_table(
    model: nn.Module,
    exclude: Iterable[str] = (),
    *,
    supported: Iterable[str] = ("dense", "csr", "csc", "nm"),
    m: int = 4,
) -> list[dict]:
    """One row per prunable layer: ``layer, params, sparsity, bits``, then ``<fmt>_bytes`` for
    dense/csr/csc/nm (N:M blocks of ``m`` with in-block indices; ``nm_n`` = the largest block
    population), ``best_format`` / ``best_bytes`` among ``supported`` (dense always allowed)."""
    from edgeflow.hardware.storage import best_format, storage_bytes

    supported = tuple(supported)
    rows = []
    for name, mod in prunable_layers(model, exclude).items():
        w = (mod.weight.detach() * get_mask(mod)).cpu()
        bits = weight_bits_of(mod)
        row: dict = {
            "layer": name,
            "params": w.numel(),
            "sparsity": layer_sparsity(mod),
            "bits": bits,
        }
        # storage_bytes views conv weights as channels-last rows [O, kh*kw*I], the N:M block layout
        sizes = storage_bytes(w, bits, m=m, mask=get_mask(mod).cpu())
        for fmt in ("dense", "csr", "csc", "nm"):
            row[f"{fmt}_bytes"] = int(sizes[fmt])
        row["nm_n"], row["nm_m"] = int(sizes["nm_n"]), int(sizes["nm_m"])
        best, nbytes = best_format(sizes, supported)
        row["best_format"], row["best_bytes"] = best, int(nbytes)
        rows.append(row)
    return rows
