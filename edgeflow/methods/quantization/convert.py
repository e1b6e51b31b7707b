"""Model conversion: BN folding, quantized layers, activation quantizers in the graph, calibration.

``quantize_model(model, input_shape, QuantConfig(...))`` returns a ``torch.fx.GraphModule`` that
computes what the exported int8 graph computes:

- the graph input is quantized (``input_quant``);
- every Conv1d/Conv2d/Linear becomes a quantized subclass (``QConv2d``, ...) that fake-quantizes
  its weight and its output (after the ReLU that follows it, fused when the ReLU alone consumes it);
- residual adds, concatenations, average pools and any other op that leaves the integer grid get an
  activation quantizer (``quant_<node>``) after them; max-pool, flatten, reshape, slicing, dropout and
  ReLU keep their input's grid and need none.

Per-layer bit-widths: the defaults, then ``first_layer_bits`` / ``last_layer_bits`` (first and last
quantizable layers in execution order), then ``overrides`` (module-name pattern → settings), later
entries winning.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Iterator

import torch
from torch import fx, nn

from edgeflow import graph as G
from edgeflow.methods.quantization.fold import detach_bn_pairs, fold_batchnorm
from edgeflow.methods.quantization.layers import QUANT_CLASSES, QUANT_LAYER_TYPES, to_quantized
from edgeflow.methods.quantization.quantizers import ActQuantizer, make_weight_quantizer

BN_MODES = ("fold", "simulate", "keep")
LAYER_KEYS = ("weight_bits", "act_bits", "weight_format", "per_channel", "weight_method", "act_method")


@dataclass
class LayerSpec:
    """Quantization settings of one layer."""

    weight_bits: int = 8
    act_bits: int = 8
    weight_format: str = "uniform"
    per_channel: bool = True
    weight_method: str = "minmax"
    act_method: str = "minmax"


@dataclass
class QuantConfig(LayerSpec):
    """How to quantize a model (see the module docstring for the order overrides apply in).

    The ``LayerSpec`` fields are the defaults of every layer; the fields below add range-setting
    parameters, first/last-layer bits, per-pattern overrides and the BatchNorm mode.

    ``weight_bits`` 1 → binary, 2…8 uniform (or the power-of-two code width, 2…4, with
    ``weight_format="pow2"``). ``act_bits`` 2…8, or 32 for weights-only quantization (activations
    stay float; such a model cannot be exported as QDQ). ``bn``: ``fold`` (fold BatchNorm before
    quantizing), ``simulate`` (QAT with BN statistics, folded at the end), ``keep`` (leave BN).
    """

    percentile: float = 99.99
    ema_momentum: float = 0.1
    first_layer_bits: int | None = None
    last_layer_bits: int | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    bn: str = "fold"

    def default_spec(self) -> LayerSpec:
        return LayerSpec(**{key: getattr(self, key) for key in LAYER_KEYS})


def name_matches(name: str, pattern: str) -> bool:
    """fnmatch on the qualified module name; ``re:<regex>`` for a regular expression (fullmatch).

    A pattern without wildcards also matches the modules below it (``features.0`` → ``features.0.0``).
    """
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    if fnmatch.fnmatchcase(name, pattern):
        return True
    return not any(c in pattern for c in "*?[") and name.startswith(pattern + ".")


def resolve_specs(config: QuantConfig, names: list[str]) -> dict[str, LayerSpec]:
    """The settings of each layer in ``names`` (execution order)."""
    specs = {}
    for i, name in enumerate(names):
        spec = config.default_spec()
        for bits, hit in ((config.first_layer_bits, i == 0), (config.last_layer_bits, i == len(names) - 1)):
            if bits is not None and hit:
                act_bits = spec.act_bits if spec.act_bits == 32 else max(spec.act_bits, bits)
                spec = replace(spec, weight_bits=bits, act_bits=act_bits)
        for pattern, settings in config.overrides.items():
            if name_matches(name, pattern):
                spec = replace(spec, **dict(settings))
        if spec.weight_bits == 1:
            spec = replace(spec, weight_format="binary")
        elif spec.weight_format == "binary":
            spec = replace(spec, weight_bits=1)
        elif spec.weight_format == "pow2" and spec.weight_bits > 4:
            spec = replace(spec, weight_format="uniform")
        specs[name] = spec
    return specs


def _insert_after(gm: fx.GraphModule, node: fx.Node, name: str, module: nn.Module) -> fx.Node:
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(node):
        q = gm.graph.call_module(name, (node,))
    node.replace_all_uses_with(q, delete_user_cb=lambda user: user is not q)
    return q


def _needs_act_quant(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op not in ("call_module", "call_function", "call_method") or not G.produces_tensor(node):
        return False
    m = G.module_of(gm, node)
    if isinstance(m, (*QUANT_LAYER_TYPES, ActQuantizer)):
        return False
    return not G.is_transparent(gm, node)


def quantize_model(model: nn.Module, input_shape: Iterable[int], config: QuantConfig | None = None,
                   inplace: bool = False) -> fx.GraphModule:
    """Quantized copy of ``model`` (a GraphModule; module names are kept). Calibrate it next.

    ``input_shape`` excludes the batch dimension. BatchNorm is folded first (``config.bn``).
    """
    config = config or QuantConfig()
    if is_quantized(model):
        raise ValueError("the model is already quantized (ptq/qat ran before); quantize a float model")
    model = model if inplace else copy.deepcopy(model)
    bns: dict[str, nn.Module] = {}
    if config.bn == "fold":
        fold_batchnorm(model)
    elif config.bn == "simulate":
        bns = detach_bn_pairs(model)
    gm = G.trace(model)
    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    G.shape_prop(gm, torch.zeros(2, *tuple(input_shape), device=device))

    layer_nodes = [n for n in gm.graph.nodes
                   if n.op == "call_module" and type(G.module_of(gm, n)) in QUANT_CLASSES]
    names = [str(n.target) for n in layer_nodes]
    if len(set(names)) != len(names):
        raise ValueError("a Conv/Linear module is called more than once; quantization needs one call per module")
    specs = resolve_specs(config, names)
    weights_only = all(s.act_bits == 32 for s in specs.values())

    def act(bits: int, method: str, fused_relu: bool) -> nn.Module:
        if bits == 32:
            return nn.ReLU() if fused_relu else nn.Identity()
        return ActQuantizer(bits, method, fused_relu, config.ema_momentum, config.percentile).to(device)

    for node in layer_nodes:
        m = G.module_of(gm, node)
        spec = specs[str(node.target)]
        fused = G.relu_after(gm, node) is not None
        wq = make_weight_quantizer(spec.weight_bits, m.weight.shape[0], spec.per_channel, spec.weight_method,
                                   spec.weight_format, config.percentile).to(device)
        aq = act(spec.act_bits, spec.act_method, fused)
        if spec.act_bits == 32:
            aq = ActQuantizer(8, "minmax", fused).to(device)
            aq.enabled = False
        to_quantized(m, wq, aq, fused_relu=fused, bn=bns.get(str(node.target)))

    if not weights_only:
        first_bits = specs[names[0]].act_bits if names else config.act_bits
        first_bits = 8 if first_bits == 32 else first_bits
        for node in list(gm.graph.nodes):
            if node.op == "placeholder":
                _insert_after(gm, node, f"input_quant_{node.name}" if node.name != "x" else "input_quant",
                              ActQuantizer(first_bits, config.act_method if config.act_method not in ("pact",)
                                           else "minmax", False, config.ema_momentum, config.percentile).to(device))
            elif _needs_act_quant(gm, node):
                fused = G.relu_after(gm, node) is not None
                bits = config.act_bits if config.act_bits != 32 else 8
                _insert_after(gm, node, f"quant_{node.name}",
                              ActQuantizer(bits, config.act_method, fused, config.ema_momentum,
                                           config.percentile).to(device))
    gm.graph.lint()
    gm.recompile()
    gm.edgeflow_quant_config = asdict(config)
    gm.edgeflow_input_shape = tuple(input_shape)
    return gm


# ---------------------------------------------------------------------------------- calibration
def act_quantizers(model: nn.Module) -> Iterator[ActQuantizer]:
    return (m for m in model.modules() if isinstance(m, ActQuantizer))


def quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Quantized Conv/Linear layers by qualified name, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QUANT_LAYER_TYPES)}


@contextmanager
def calibration_mode(model: nn.Module) -> Iterator[None]:
    """Activation quantizers observe (in eval mode too) and pass values through unquantized."""
    qs = list(act_quantizers(model))
    for q in qs:
        q.calibrating = True
    try:
        yield
    finally:
        for q in qs:
            q.calibrating = False


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Any], num_batches: int | None = None) -> int:
    """Observe activation ranges on ``batches`` (tensors or ``(x, y)`` pairs) in eval mode, then set
    every scale / zero point (weights too). Returns the number of batches used."""
    was = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    n = 0
    layers = list(quant_layers(model).values())
    enabled = [layer.weight_quantizer.enabled for layer in layers]
    for layer in layers:  # statistics of the float network, as PTQ defines them
        layer.weight_quantizer.enabled = False
    with calibration_mode(model):
        for batch in batches:
            if num_batches is not None and n >= num_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x.to(device))
            n += 1
    for layer, was_enabled in zip(layers, enabled):
        layer.weight_quantizer.enabled = was_enabled
    for q in act_quantizers(model):
        if q.num_batches > 0:
            if q.learnable:
                q.init_learnable()
            else:
                q.compute_qparams()
    for layer in quant_layers(model).values():
        _calibrate_weights(layer)
    model.train(was)
    return n


def freeze_observers(model: nn.Module, weights: bool = True) -> None:
    """Fix every activation range (and weight scale if ``weights``); learned ranges stop learning."""
    for m in model.modules():
        if isinstance(m, ActQuantizer):
            m.freeze()
    if weights:
        for layer in quant_layers(model).values():
            layer.weight_quantizer.freeze()


def freeze_bn(model: nn.Module) -> None:
    """Use running statistics in every simulated-folding BN from now on."""
    for layer in quant_layers(model).values():
        layer.freeze_bn()


def _calibrate_weights(layer: nn.Module) -> None:
    w = layer.weight.detach()
    if getattr(layer, "bn", None) is not None:
        w = w * layer._bn_factor().detach().reshape(-1, *([1] * (w.ndim - 1)))
    layer.weight_quantizer.calibrate(w, layer._mask())


def fold_simulated_bn(model: nn.Module) -> None:
    """Fold the BNs attached for QAT into their layers (the deployed, integer-only form)."""
    for layer in quant_layers(model).values():
        if getattr(layer, "bn", None) is not None:
            layer.fold_bn()
            if layer.weight_quantizer.method != "lsq":
                _calibrate_weights(layer)


# --------------------------------------------------------------------------------------- summary
def is_quantized(model: nn.Module) -> bool:
    """True if ``model`` contains quantized layers (the export stage then writes QDQ ONNX)."""
    return any(isinstance(m, QUANT_LAYER_TYPES) for m in model.modules())


def weight_bits_of(module: nn.Module) -> int:
    """Bits per weight of a Conv/Linear module: its quantizer's ``bits``, 32 if float."""
    wq = getattr(module, "weight_quantizer", None)
    return int(getattr(wq, "bits", 32)) if wq is not None else 32


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
