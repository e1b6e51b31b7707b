"""Integer parts of adaptive systems (post-training quantization, plain PyTorch).

- ``quantize_chain(system, input_shape, config, batches)``: an ``EarlyExit`` whose every backbone
  segment and exit head is a quantized model (``edgeflow.methods.quantization.quantize_model``),
  calibrated in chain order — segment ``k`` and head ``k`` observe training batches that ran through
  the quantized segments before them — and frozen. Each boundary is one int8 tensor: the input
  quantizer of the part after a segment (the next segment, the exit head) is tied to that segment's
  output quantizer (same scale and zero point), so re-quantizing is the identity on the integers and
  the export can hand the same integers from part to part;
- ``quantize_widths(system, input_shape, config, batches)``: a ``VariableWidth`` as ``WidthModels`` —
  the plain model of every width (``materialize``) quantized and calibrated on its own;
- ``chain_structure`` / ``WidthModels``: the quantized structure without calibration (what a
  blueprint rebuilds before the state dict is loaded).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch import nn

from edgeflow.methods.adaptive.system import BigLittle, EarlyExit

CALIBRATION_BATCHES = 8  # training batches every int8 part is calibrated on (big/little too)


class WidthModels(BigLittle):
    """A variable-width system deployed as one plain model per width, narrowest first (the policy of
    ``BigLittle``: widen while the confidence is at most θ; a sample pays for every width it ran)."""

    system = "variable_width"

    def __init__(self, parts: Sequence[nn.Module], widths: Sequence[float], measure: str = "score_margin") -> None:
        super().__init__(parts, measure, [f"w{round(100 * w)}" for w in widths])
        self.widths = [float(w) for w in widths]


def segment_shapes(system: EarlyExit, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The input shape of every segment, then the final output's."""
    shapes, h = [tuple(input_shape)], torch.zeros(2, *input_shape)
    was = system.training
    system.eval()
    with torch.no_grad():
        for seg in system.segments:
            h = seg(h)
            shapes.append(tuple(h.shape[1:]))
    system.train(was)
    return shapes


def chain_structure(system: EarlyExit, input_shape: tuple[int, ...], config: Any) -> EarlyExit:
    """``system`` with every segment and head replaced by its quantized model (not calibrated; a
    head that is a bare ``Linear`` is quantized inside a ``Sequential``).
    Raises ``ValueError`` for a head the int8 export cannot write (unequal pooling windows)."""
    from edgeflow.methods.quantization import quantize_model

    shapes = segment_shapes(system, input_shape)
    for k, head in enumerate(system.heads):
        if any(isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) for m in head.modules()):
            raise ValueError(f"exit {system.exits[k]}: its feature map {list(shapes[k + 1][1:])} does not divide into "
                             "the head's pooling bins; int8 heads need equal windows (choose another exit point)")
    segments = [quantize_model(seg, shapes[k], config) for k, seg in enumerate(system.segments)]
    heads = [quantize_model(head if isinstance(head, nn.Sequential) else nn.Sequential(head), shapes[k + 1], config)
             for k, head in enumerate(system.heads)]   # a bare Linear head traces as one call: wrap it
    out = EarlyExit(segments, heads, system.exits, system.measure)
    out.thresholds.copy_(system.thresholds)
    out.calibration = dict(system.calibration)
    return out


def output_quantizer(model: nn.Module) -> nn.Module:
    """The activation quantizer whose integers a quantized model returns (through value-preserving
    ops: max-pool, flatten, ReLU, ...). Raises ``ValueError`` when its output is not on one grid."""
    from edgeflow import graph as G
    from edgeflow.methods.quantization.layers import QUANT_LAYER_TYPES
    from edgeflow.methods.quantization.quantizers import ActQuantizer

    node = next(n for n in model.graph.nodes if n.op == "output").args[0]
    while True:
        m = G.module_of(model, node)
        if isinstance(m, ActQuantizer):
            return m
        if isinstance(m, QUANT_LAYER_TYPES) and m.act_quantizer.enabled:
            return m.act_quantizer
        if not G.is_transparent(model, node):
            raise ValueError(f"the output of node {node.name} is not an int8 tensor of one quantizer")
        node = node.args[0]


def input_quantizer(model: nn.Module) -> nn.Module:
    """The quantizer of a quantized model's graph input (``quantize_model``'s ``input_quant``)."""
    from edgeflow import graph as G

    placeholder = next(n for n in model.graph.nodes if n.op == "placeholder")
    users = list(placeholder.users)
    if len(users) != 1 or not G.is_quantizer(G.module_of(model, users[0])):
        raise ValueError("the model's input is not quantized once (quantize_model with act_bits 32?)")
    return G.module_of(model, users[0])


@torch.no_grad()
def tie(consumer: nn.Module, producer: nn.Module) -> None:
    """Give activation quantizer ``consumer`` the range, scale and zero point of ``producer`` (learned
    range parameters too) and freeze it: it then maps ``producer``'s integers onto themselves."""
    consumer.freeze()                        # first: freezing an mse observer recomputes its range
    for name in ("min_val", "max_val", "scale", "zero_point", "initialized"):
        getattr(consumer, name).copy_(getattr(producer, name))
    own = dict(consumer.named_parameters(recurse=False))
    for name, p in producer.named_parameters(recurse=False):
        if name in own:
            own[name].copy_(p)


def _inputs(batches: Iterable[Any], limit: int) -> list[torch.Tensor]:
    out = []
    for batch in batches:
        if len(out) >= limit:
            break
        out.append(batch[0] if isinstance(batch, (tuple, list)) else batch)
    return out


@torch.no_grad()
def quantize_chain(system: EarlyExit, input_shape: tuple[int, ...], config: Any, batches: Iterable[Any],
                   num_batches: int = CALIBRATION_BATCHES) -> EarlyExit:
    """The int8 early-exit system of ``system`` (see the module docstring); ``system`` is unchanged."""
    from edgeflow.methods.quantization import calibrate, freeze_observers

    out = chain_structure(system, input_shape, config).eval()
    xs = _inputs(batches, num_batches)
    for k, seg in enumerate(out.segments):
        calibrate(seg, xs)
        if k:
            tie(input_quantizer(seg), output_quantizer(out.segments[k - 1]))
        freeze_observers(seg)
        xs = [seg(x) for x in xs]                       # the integers the next parts receive
        if k < len(out.heads):
            head = out.heads[k]
            calibrate(head, xs)
            tie(input_quantizer(head), output_quantizer(seg))
            freeze_observers(head)
    return out


@torch.no_grad()
def quantize_widths(system: Any, input_shape: tuple[int, ...], config: Any, batches: Iterable[Any],
                    num_batches: int = CALIBRATION_BATCHES) -> WidthModels:
    """The int8 ``WidthModels`` of a ``VariableWidth`` (every width's plain model quantized and calibrated)."""
    from edgeflow.methods.quantization import calibrate, freeze_observers, quantize_model

    xs = _inputs(batches, num_batches)
    parts = []
    for k in range(system.num_paths):
        part = quantize_model(system.materialize(k).eval(), input_shape, config)
        calibrate(part, xs)
        freeze_observers(part)
        parts.append(part)
    out = WidthModels(parts, system.widths, system.measure)
    out.calibration = dict(system.calibration)
    return out.eval()
