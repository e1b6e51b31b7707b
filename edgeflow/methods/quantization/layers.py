"""Quantized layers: subclasses of ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Linear`` with fake quantization.

Each carries ``weight_quantizer`` (its ``bits``: 1 = binary, 2…8 uniform or power-of-two code width)
and ``act_quantizer`` (the output activation quantizer, applied after the optionally fused ReLU).
``isinstance(layer, nn.Conv2d)`` still holds, so hardware analysis and pruning see ordinary layers.

Converted in place with :func:`to_quantized` (a class swap), which keeps every parameter, buffer
(``weight_mask`` included), hook and attribute of the float module.

Optional simulated BatchNorm folding for QAT (``attach_bn``): the layer holds the BN (``self.bn``) and
quantizes the *folded* weight ``w · γ/σ_running``; while training, BN still normalises with batch
statistics (Krishnamoorthi 2018, §3.2); after ``freeze_bn()`` it uses running statistics, and
``fold_bn()`` turns it into a plain quantized layer whose integer weights are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.methods.quantization.quantizers import ActQuantizer


class QuantLayerMixin:
    """Shared forward of quantized conv / linear layers (the float op is ``_float_op(x, w, b)``)."""

    weight_quantizer: nn.Module
    act_quantizer: ActQuantizer
    fused_relu: bool
    bn: nn.Module | None

    def _float_op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _mask(self) -> Tensor | None:
        m = getattr(self, "weight_mask", None)
        return m if isinstance(m, Tensor) else None

    def quantized_weight(self) -> Tensor:
        """The fake-quantized weight used in the forward pass (folded with ``bn`` if attached)."""
        w = self.weight
        if getattr(self, "bn", None) is not None:
            w = w * self._bn_factor().reshape(-1, *([1] * (w.ndim - 1)))
        return self.weight_quantizer(w, self._mask())

    def _bn_factor(self) -> Tensor:
        bn = self.bn
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        return gamma / torch.sqrt(bn.running_var + bn.eps)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        bn = getattr(self, "bn", None)
        if bn is None:
            w = self.quantized_weight()
            y = self._float_op(x, w, self.bias)
        else:
            factor = self._bn_factor()
            shape = (1, -1) + (1,) * (x.ndim - 2)
            safe = torch.where(factor.abs() < 1e-12, torch.full_like(factor, 1e-12), factor)
            y = self._float_op(x, self.quantized_weight(), None) / safe.reshape(shape)
            if self.bias is not None:
                y = y + self.bias.reshape(shape)
            frozen = getattr(self, "bn_frozen", False)
            y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                             training=bn.training and not frozen, momentum=bn.momentum or 0.1, eps=bn.eps)
        if self.fused_relu:
            y = F.relu(y)
        out = self.act_quantizer(y)
        if bn is None and not self.training and getattr(self, "tflm_rounding", False):  # rounding=tflm (``tflm.link``)
            from edgeflow.methods.quantization import tflm

            out = tflm.requantize_layer(self, x, w, out)
        return out

    # -- simulated BN folding (QAT) --------------------------------------------------------------
    def freeze_bn(self) -> None:
        """Use running BN statistics from now on (no more updates)."""
        self.bn_frozen = True

    @torch.no_grad()
    def fold_bn(self) -> None:
        """Fold the attached BN into weight and bias (the deployed form); no-op without BN."""
        bn = getattr(self, "bn", None)
        if bn is None:
            return
        factor = self._bn_factor()
        self.weight.mul_(factor.reshape(-1, *([1] * (self.weight.ndim - 1))))
        bias = self.bias if self.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * factor + (bn.bias if bn.bias is not None else 0.0)
        if self.bias is None:
            self.bias = nn.Parameter(new_bias.detach().clone())
        else:
            self.bias.data.copy_(new_bias)
        self.bn = None


class QConv1d(QuantLayerMixin, nn.Conv1d):
    def _float_op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return self._conv_forward(x, w, b)


class QConv2d(QuantLayerMixin, nn.Conv2d):
    def _float_op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return self._conv_forward(x, w, b)


class QLinear(QuantLayerMixin, nn.Linear):
    def _float_op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return F.linear(x, w, b)


QUANT_CLASSES: dict[type[nn.Module], type[nn.Module]] = {nn.Conv1d: QConv1d, nn.Conv2d: QConv2d, nn.Linear: QLinear}
QUANT_LAYER_TYPES = (QConv1d, QConv2d, QLinear)


def to_quantized(module: nn.Module, weight_quantizer: nn.Module, act_quantizer: ActQuantizer,
                 fused_relu: bool = False, bn: nn.Module | None = None) -> nn.Module:
    """Turn a float Conv1d/Conv2d/Linear into its quantized subclass, in place (returns it).

    The class swap keeps every parameter and buffer (``weight_mask`` included), hooks and attributes.
    """
    base = next((b for b in QUANT_CLASSES if type(module) is b), None)
    if base is None:
        raise TypeError(f"cannot quantize {type(module).__name__}: only plain Conv1d, Conv2d, Linear")
    module.__class__ = QUANT_CLASSES[base]
    module.add_module("weight_quantizer", weight_quantizer)
    module.add_module("act_quantizer", act_quantizer)
    module.fused_relu = bool(fused_relu)
    module.bn_frozen = False
    if bn is not None:
        module.add_module("bn", bn)
    else:
        module.bn = None
    return module
