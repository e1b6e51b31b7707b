"""Mixed-precision search (EdMIPS, Cai & Vasconcelos 2020), per layer, over edgeflow's fake-quant modules.

``MixedPrecision(model, input_shape, weight_bits=(2, 4, 8), act_bits=(4, 8))`` quantizes a copy of
the float ``model`` (``quantize_model``: BatchNorm folded, per-channel symmetric weights, asymmetric
activations) and gives every quantized layer a :class:`MixedQuantizer` for its weight and one for its
output activation: the candidates are edgeflow's own ``WeightQuantizer`` / ``ActQuantizer`` at each
bit-width, mixed by ``softmax(α)`` (the forward is ``Σ_b p_b · Q_b(x)``). The first layer's
activation keeps the largest width (it sets the input quantizer's, as ``quantize_model`` does);
quantizers after adds and pools stay at the largest width.

``soft_cost(hw)`` is the cost of the argmax bit-widths through ``soft_model_cost`` (a ``BitChoice``
per layer, one-hot with the softmax's gradient — straight through —; pooling and other layers without
their own quantizer take the bits of the layer they read, found once by analysis): always equal to
``hw.estimate(analyze(export()))`` wherever the tensors fill whole bytes, so a DUCCIO target is met by
the exported model, not by an expectation (EdMIPS' expected cost ran 13 % below its argmax model's
flash on digits). ``export()`` keeps the
argmax candidates: a plain quantized model (``QConv2d``... with ``WeightQuantizer`` /
``ActQuantizer`` at the chosen bits) whose blueprint is a ``quantize`` step with one override per
layer, which QAT, export, the int8 runtime and ``profile`` read as any quantized model.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from edgeflow.hardware.differentiable import BitChoice, soft_model_cost
from edgeflow.hardware.graph import ModelCost, analyze
from edgeflow.methods.quantization import (ActQuantizer, QuantConfig, calibrate, freeze_observers,
                                           make_weight_quantizer, quant_layers, quantize_model)
from edgeflow.models import blueprint


class MixedQuantizer(nn.Module):
    """``Σ_i softmax(α)_i · candidates[i](*args)``; ``α`` starts (almost) uniform, the last — widest —
    candidate ahead by 1e-3, so the argmax starts at full precision."""

    def __init__(self, candidates: Sequence[nn.Module], bits: Sequence[int]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.choices = [int(b) for b in bits]
        self.alpha = nn.Parameter(torch.zeros(len(candidates)))
        with torch.no_grad():
            self.alpha[-1] = 1e-3

    def probs(self) -> Tensor:
        return torch.softmax(self.alpha, 0)

    def forward(self, *args: Any) -> Tensor:
        p = self.probs()
        return sum(p[i] * q(*args) for i, q in enumerate(self.candidates))

    def choice(self) -> BitChoice:
        """The argmax candidate as a one-hot ``BitChoice`` whose gradient is the softmax's (straight
        through): the cost of the architecture ``export`` would give, differentiable in ``α``."""
        p = self.probs().to(torch.float64)
        hard = torch.zeros_like(p)
        hard[self.chosen()] = 1.0
        return BitChoice(p + (hard - p).detach(), self.choices)

    def chosen(self) -> int:
        """Index of the most probable candidate."""
        return int(torch.argmax(self.alpha.detach()))

    # what calibration and freezing ask of a layer's weight quantizer
    @property
    def enabled(self) -> bool:
        return all(getattr(q, "enabled", True) for q in self.candidates)

    @enabled.setter
    def enabled(self, value: bool) -> None:
        for q in self.candidates:
            q.enabled = value

    def calibrate(self, w: Tensor, mask: Tensor | None = None) -> None:
        for q in self.candidates:
            q.calibrate(w, mask)

    def freeze(self) -> None:
        for q in self.candidates:
            q.freeze()


class MixedPrecision(nn.Module):
    """The mixed-precision supernet of a float ``model`` (see the module docstring)."""

    def __init__(self, model: nn.Module, input_shape: Iterable[int], weight_bits: Sequence[int] = (2, 4, 8),
                 act_bits: Sequence[int] = (4, 8), per_channel: bool = True) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.weight_bits, self.act_bits = sorted(set(weight_bits)), sorted(set(act_bits))
        self.config = QuantConfig(weight_bits=max(self.weight_bits), act_bits=max(self.act_bits),
                                  per_channel=per_channel)
        self.qmodel = quantize_model(model, self.input_shape, self.config, bn="fold")
        self.nominal: ModelCost = analyze(self.qmodel, self.input_shape)
        layers = quant_layers(self.qmodel)
        order = [layer.name for layer in self.nominal.layers if layer.name in layers]
        self.layer_names = order
        self.inherits = self._act_inheritance(order[1:])
        for i, name in enumerate(order):
            layer = layers[name]
            channels = layer.weight.shape[0]
            layer.weight_quantizer = MixedQuantizer(
                [make_weight_quantizer(b, channels, per_channel) for b in self.weight_bits], self.weight_bits)
            act = layer.act_quantizer
            bits = self.act_bits if i > 0 else [max(self.act_bits)]
            layer.act_quantizer = MixedQuantizer(
                [ActQuantizer(b, act.method, act.fused_relu, act.momentum, act.percentile) for b in bits], bits)

    def _act_inheritance(self, searched: list[str]) -> dict[str, str]:
        """Analysed layers without their own activation quantizer → the searched layer whose
        output bits they take (found by lowering each searched layer's bits in turn)."""
        layers = quant_layers(self.qmodel)
        base = {layer.name: layer.act_bits for layer in self.nominal.layers}
        out = {}
        for name in searched:
            q = layers[name].act_quantizer
            q.bits = min(self.act_bits)
            try:
                cost = analyze(self.qmodel, self.input_shape)
            finally:
                q.bits = max(self.act_bits)
            for layer in cost.layers:
                if layer.name != name and layer.name not in layers and layer.act_bits != base[layer.name]:
                    out[layer.name] = name
        return out

    def calibrate(self, batches: Iterable[Any], num_batches: int = 8) -> None:
        """Set every candidate's ranges on ``num_batches`` batches, then fix the activation ranges."""
        calibrate(self.qmodel, batches, num_batches)
        freeze_observers(self.qmodel, weights=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.qmodel(x)

    def _mixers(self) -> dict[str, tuple[MixedQuantizer, MixedQuantizer]]:
        layers = quant_layers(self.qmodel)
        return {n: (layers[n].weight_quantizer, layers[n].act_quantizer) for n in self.layer_names}

    def arch_parameters(self) -> list[nn.Parameter]:
        """The bit-width logits ``α`` of every weight and activation mixer."""
        return [q.alpha for pair in self._mixers().values() for q in pair]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch and p.requires_grad]

    def soft_cost(self, hw: Any) -> dict[str, Tensor]:
        """Totals at the argmax bit-widths, with the softmax's gradients to ``α`` (straight through)."""
        bits, act = {}, {}
        for name, (wq, aq) in self._mixers().items():
            bits[name], act[name] = wq.choice(), aq.choice()
        for name, source in self.inherits.items():
            bits[name] = act[name] = act[source]
        return soft_model_cost(hw, self.nominal, bits=bits, act_bits=act)

    def architecture(self) -> list[dict[str, Any]]:
        """One row per quantized layer: channels, the chosen weight / activation bits and their probabilities."""
        rows = []
        for name, (wq, aq) in self._mixers().items():
            w = quant_layers(self.qmodel)[name].weight
            rows.append({"layer": name, "channels_before": int(w.shape[0]), "channels": int(w.shape[0]),
                         "weight_bits": wq.choices[wq.chosen()], "act_bits": aq.choices[aq.chosen()],
                         "weight_probs": " ".join(f"{p:.2f}" for p in wq.probs().tolist()),
                         "act_probs": " ".join(f"{p:.2f}" for p in aq.probs().tolist())})
        return rows

    def export_config(self) -> QuantConfig:
        """The ``QuantConfig`` that rebuilds the exported model: one exact-name override per layer."""
        overrides = {f"re:{re.escape(r['layer'])}": {"weight_bits": r["weight_bits"], "act_bits": r["act_bits"]}
                     for r in self.architecture()}
        return QuantConfig(**{**self.config.spec_dict(), "overrides": overrides})

    @torch.no_grad()
    def export(self) -> nn.Module:
        """A plain quantized model holding the chosen candidates (same weights, ranges and flags)."""
        model = copy.deepcopy(self.qmodel)
        layers = quant_layers(model)
        for name in self.layer_names:
            layer = layers[name]
            wq, aq = layer.weight_quantizer, layer.act_quantizer
            layer.weight_quantizer = wq.candidates[wq.chosen()]
            layer.act_quantizer = aq.candidates[aq.chosen()]
        steps = blueprint.blueprint_of(self.qmodel)
        if steps is not None:
            step = {**steps[-1], "config": self.export_config().spec_dict()}
            blueprint.set_blueprint(model, [*steps[:-1], step])
        return model
