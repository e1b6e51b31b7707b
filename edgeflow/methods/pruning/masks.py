"""Weight masks: the ``weight_mask`` buffer convention, layer selection and sparsity reporting.

A pruned Conv/Linear module carries a float buffer ``weight_mask`` (same shape as ``weight``, values
0/1) and its weight is zeroed where the mask is 0. Anything that trains the model afterwards
(``edgeflow.training.fit``, the QAT stage, ...) multiplies the weight by the mask after every
optimizer step, so pruned weights stay exactly zero. Because the mask is a buffer it is saved in
``state_dict`` and carried over by module replacement (quantization), which is what makes
prune -> QAT -> export keep the sparsity.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

import torch
from torch import nn

MASK = "weight_mask"
PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Linear)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True when the module name matches one of the shell-style glob ``patterns``.

    Patterns use :mod:`fnmatch` syntax on the qualified module name (``"fc"``, ``"head.*"``,
    ``"*.shortcut*"``); a pattern without wildcards matches the name exactly or any module below it
    (``"features.0"`` also matches ``"features.0.conv"``).
    """
    for p in patterns:
        if fnmatch.fnmatchcase(name, p) or (not any(c in p for c in "*?[") and name.startswith(p + ".")):
            return True
    return False


def prunable_layers(model: nn.Module, exclude: Iterable[str] = ()) -> dict[str, nn.Module]:
    """Conv1d/Conv2d/Linear modules (subclasses included, e.g. fake-quant layers) by qualified name,
    in module order, minus those whose name matches a pattern in ``exclude``."""
    exclude = list(exclude)
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, PRUNABLE_TYPES) and not matches(name, exclude)
    }


def get_mask(module: nn.Module) -> torch.Tensor:
    """The module's ``weight_mask`` (a tensor of ones if it has none)."""
    mask = getattr(module, MASK, None)
    if mask is None:
        return torch.ones_like(module.weight)
    return mask


def has_mask(module: nn.Module) -> bool:
    return isinstance(getattr(module, MASK, None), torch.Tensor)


@torch.no_grad()
def set_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Install ``mask`` as the module's ``weight_mask`` buffer and zero the masked weights."""
    mask = mask.to(dtype=module.weight.dtype, device=module.weight.device)
    if mask.shape != module.weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(module.weight.shape)}")
    if has_mask(module):
        getattr(module, MASK).copy_(mask)
    else:
        module.register_buffer(MASK, mask.clone())
    module.weight.mul_(getattr(module, MASK))


def set_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Install several masks, keyed by qualified module name."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        set_mask(modules[name], mask)


@torch.no_grad()
def apply_masks(model: nn.Module) -> int:
    """``weight *= weight_mask`` on every module that has a mask; returns how many were applied.

    ``edgeflow.training.fit`` does this after every optimizer step; the pruning callback does it too,
    so the masks hold even under a plain Lightning trainer.
    """
    n = 0
    for m in model.modules():
        mask = getattr(m, MASK, None)
        if isinstance(mask, torch.Tensor) and isinstance(getattr(m, "weight", None), torch.Tensor):
            m.weight.mul_(mask)
            n += 1
    return n


def remove_masks(model: nn.Module) -> None:
    """Drop every ``weight_mask`` buffer (the zeroed weights stay zero). Later training may then
    regrow them; keep the masks unless a dense-to-sparse step needs them gone."""
    for m in model.modules():
        if MASK in m._buffers:
            del m._buffers[MASK]


@torch.no_grad()
def layer_sparsity(module: nn.Module) -> float:
    """Fraction of the module's weights that are pruned: zeros of ``weight_mask`` if it has one,
    else exact zeros of the weight (the same rule as the hardware analysis)."""
    if has_mask(module):
        m = getattr(module, MASK)
        return float((m == 0).sum().item()) / m.numel()
    w = module.weight
    return float((w == 0).sum().item()) / w.numel()


@torch.no_grad()
def sparsity_report(model: nn.Module, exclude: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Per prunable layer: ``{"params": n, "zeros": z, "sparsity": z / n}`` plus a ``"total"`` row
    over all those layers (weights only; biases and BatchNorm are not counted)."""
    out: dict[str, dict[str, float]] = {}
    tot_n = tot_z = 0
    for name, m in prunable_layers(model, exclude).items():
        n = m.weight.numel()
        z = round(layer_sparsity(m) * n)
        out[name] = {"params": n, "zeros": z, "sparsity": z / n}
        tot_n += n
        tot_z += z
    out["total"] = {"params": tot_n, "zeros": tot_z, "sparsity": tot_z / max(tot_n, 1)}
    return out


def global_sparsity(model: nn.Module, exclude: Iterable[str] = ()) -> float:
    """Pruned fraction of the weights of all prunable layers not matching ``exclude``."""
    return sparsity_report(model, exclude)["total"]["sparsity"]
