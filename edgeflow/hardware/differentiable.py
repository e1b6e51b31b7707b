"""Differentiable hardware costs: the roofline of ``edgeflow.hardware.roofline`` on torch tensors.

For DNAS and mixed-precision search. Inputs may be soft:

- channel counts as tensors (e.g. the expected number of kept channels ``mask_probs.sum()``), which
  scale a layer's MACs, weights and activations linearly;
- bit-widths as a probability vector over candidate bit-widths (``BitChoice(probs, choices)``): the
  cost is the expectation ``Σ_b p_b · cost(b)`` (EdMIPS-style), exact when ``probs`` is one-hot.

Everything returns scalar tensors carrying gradients. Differences from ``HardwareModel.estimate``
(by design, to stay smooth): weights are costed dense (no sparse formats), bytes are not rounded up
to whole bytes, and peak RAM is not modelled (it is a max over a liveness set; constrain it with the
exact estimate). On hard inputs of a dense target with whole-byte tensors the results are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from edgeflow.hardware.graph import ModelCost
from edgeflow.hardware.model import HardwareModel, load
from edgeflow.hardware.roofline import roofline
from edgeflow.hardware.schema import precision_of


@dataclass
class BitChoice:
    """A soft bit-width: ``probs[i]`` is the probability of ``choices[i]`` bits."""

    probs: Tensor
    choices: Sequence[int]

    def pairs(self) -> list[tuple[Tensor, int]]:
        return [(self.probs[i], int(b)) for i, b in enumerate(self.choices)]


def expected_channels(keep_probs: Tensor) -> Tensor:
    """Expected number of kept channels from per-channel keep probabilities (or a soft mask)."""
    return keep_probs.sum()


def expected_bits(bits: BitChoice) -> Tensor:
    """Expected bit-width Σ p_b · b."""
    return sum(p * b for p, b in bits.pairs())


def conv_macs(cin: Any, cout: Any, kernel: Sequence[int] | int, out_spatial: int, groups: Any = 1) -> Any:
    """MACs of a convolution: ``out_spatial · cout · cin/groups · prod(kernel)`` (soft-friendly)."""
    k = math.prod(kernel) if not isinstance(kernel, int) else kernel
    return out_spatial * cout * (cin / groups) * k


def linear_macs(cin: Any, cout: Any, tokens: int = 1) -> Any:
    """MACs of a Linear layer: ``tokens · cin · cout``."""
    return tokens * cin * cout


def _as_pairs(bits: int | BitChoice | None, default: int) -> list[tuple[Any, int]]:
    if bits is None:
        return [(1.0, int(default))]
    if isinstance(bits, BitChoice):
        return bits.pairs()
    return [(1.0, int(bits))]


def soft_layer_cost(hw: HardwareModel | Any, *, macs: Any, weights: Any, act_elements: Any,
                    weight_bits: int | BitChoice = 8, act_bits: int | BitChoice | None = None,
                    ops: Any = 0.0, biases: Any = 0.0) -> dict[str, Tensor]:
    """Expected ``latency_ms``, ``energy_uj``, ``flash_bytes`` of one layer (scalar tensors).

    ``act_elements``: input + output activation elements; ``act_bits`` defaults to the weight bits
    of each choice. The roofline of ``HardwareModel.estimate_layer`` (dense kernel).
    """
    c = load(hw).cfg
    t = lambda v: v if isinstance(v, Tensor) else torch.tensor(float(v), dtype=torch.float64)  # noqa: E731
    macs, weights, act_elements, ops, biases = map(t, (macs, weights, act_elements, ops, biases))
    lat = energy = flash = torch.zeros((), dtype=torch.float64)
    for pw, wb in _as_pairs(weight_bits, 8):
        for pa, ab in _as_pairs(act_bits, wb) if act_bits is not None else [(1.0, wb)]:
            p = pw * pa
            wbytes = weights * (wb / 8.0)
            r = roofline(c, precision_of(wb, ab), macs + ops, wbytes + 4.0 * biases, act_elements * (ab / 8.0))
            lat = lat + p * r.latency_ms
            energy = energy + p * r.energy_uj
            flash = flash + p * (wbytes + 4.0 * biases)
    return {"latency_ms": lat, "energy_uj": energy, "flash_bytes": flash}


def soft_model_cost(hw: HardwareModel | Any, cost: ModelCost,
                    channels: dict[str, tuple[Any, Any]] | None = None,
                    bits: dict[str, int | BitChoice] | None = None,
                    act_bits: dict[str, int | BitChoice] | None = None) -> dict[str, Tensor]:
    """Expected totals (``latency_ms``, ``energy_uj``, ``flash_bytes``, ``macs``, ``params``) of a model.

    ``cost``: ``analyze(model, input_shape)`` of the nominal (largest) model. ``channels[name] =
    (cin, cout)`` or ``(cin, cout, taps)``: soft input/output channel counts of a layer and, optionally,
    its soft number of kernel taps (a searched receptive field: MACs and weights also scale by
    ``taps / prod(kernel)``); MACs and weights scale by
    ``cin/cin0 · cout/cout0`` (depthwise: ``cout/cout0`` only), biases and ``ops`` (pool/add/activation
    elements) by ``cout/cout0``, input activations by ``cin/cin0``, outputs by ``cout/cout0``. Layers
    not named keep their nominal cost.
    ``bits[name]`` / ``act_bits[name]``: soft or hard bit-widths (default: the layer's own).
    """
    channels = channels or {}
    bits = bits or {}
    act_bits = act_bits or {}
    tot = {k: torch.zeros((), dtype=torch.float64)
           for k in ("latency_ms", "energy_uj", "flash_bytes", "macs", "params")}
    for layer in cost.layers:
        in_el = float(sum(math.prod(s) for s in layer.input_shapes))
        out_el = float(math.prod(layer.output_shape))
        macs, weights, biases, ops = layer.macs, layer.weights, layer.biases, layer.ops
        if layer.name in channels:
            cin, cout, *taps = channels[layer.name]
            linear = layer.kind == "linear"
            cin0 = layer.input_shapes[0][-1 if linear else 0]
            cout0 = layer.output_shape[-1 if linear else 0]
            s_in, s_out = cin / cin0, cout / cout0
            scale = s_out if layer.kind.startswith("dwconv") or not layer.weights else s_in * s_out
            if taps and layer.weights and "kernel" in layer.attrs:
                scale = scale * (taps[0] / math.prod(layer.attrs["kernel"]))
            macs, weights, biases, ops = macs * scale, weights * scale, biases * s_out, ops * s_out
            in_el, out_el = in_el * s_in, out_el * s_out
        r = soft_layer_cost(hw, macs=macs, weights=weights, act_elements=in_el + out_el, ops=ops,
                            biases=biases, weight_bits=bits.get(layer.name, layer.weight_bits),
                            act_bits=act_bits.get(layer.name, layer.act_bits))
        for k in ("latency_ms", "energy_uj", "flash_bytes"):
            tot[k] = tot[k] + r[k]
        tot["macs"] = tot["macs"] + (macs if isinstance(macs, Tensor) else torch.tensor(float(macs), dtype=torch.float64))
        tot["params"] = tot["params"] + weights + biases
    return tot
