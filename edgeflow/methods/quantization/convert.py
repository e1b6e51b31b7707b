"""Model conversion: BN folding, quantized layers, activation quantizers in the graph, calibration.

``quantize_model(model, input_shape, QuantConfig(...), bn="fold")`` returns a ``torch.fx.GraphModule`` that
computes what the exported int8 graph computes:

- the graph input is quantized (``input_quant``);
- every Conv1d/Conv2d/Linear becomes a quantized subclass (``QConv2d``, ...) that fake-quantizes
  its weight and its output (after the ReLU that follows it, fused when the ReLU alone consumes it);
- residual adds, concatenations, average pools and any other op that leaves the integer grid get an
  activation quantizer (``quant_<node>``) after them; max-pool, flatten, reshape, slicing, dropout and
  ReLU keep their input's grid and need none.

Per-layer settings: ``resolve_specs`` of the ``QuantConfig`` (``edgeflow.methods.quantization.spec``).
``rounding: tflm`` makes the forward compute TFLite Micro's integers (``edgeflow.methods.quantization.tflm``).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch
from torch import fx, nn

from edgeflow import graph as G
from edgeflow.core.errors import require_choice
from edgeflow.methods.quantization.fold import detach_bn_pairs, fold_batchnorm
from edgeflow.methods.quantization.layers import QUANT_CLASSES, QUANT_LAYER_TYPES, to_quantized
from edgeflow.methods.quantization.quantizers import ActQuantizer, make_weight_quantizer
from edgeflow.methods.quantization.spec import BN_MODES, QuantConfig, resolve_specs
from edgeflow.models import blueprint


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


def quantize_model(model: nn.Module, input_shape: Iterable[int], config: QuantConfig | None = None, *,
                   bn: str = "fold", inplace: bool = False) -> fx.GraphModule:
    """Quantized copy of ``model`` (a GraphModule; module names are kept). Calibrate it next.

    ``input_shape`` excludes the batch dimension. ``config`` (default ``QuantConfig()``; a stage
    ``Config`` extending it works as is) is checked first (``ConfigError``). ``bn`` (``BN_MODES``):
    ``fold`` BatchNorm before quantizing, ``simulate`` it (QAT with BN statistics, folded at the end by
    ``fold_simulated_bn``), ``keep`` it as is.
    """
    config = config or QuantConfig()
    config.check()
    require_choice(bn, "bn", BN_MODES)
    if is_quantized(model):
        raise ValueError("the model is already quantized (ptq/qat ran before); quantize a float model")
    model = model if inplace else copy.deepcopy(model)
    bns: dict[str, nn.Module] = {}
    if bn == "fold":
        fold_batchnorm(model)
    elif bn == "simulate":
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
    if config.rounding == "tflm":
        from edgeflow.methods.quantization import tflm

        tflm.link(gm)
    blueprint.record(gm, {"op": "quantize", "input_shape": [int(d) for d in input_shape],
                          "config": config.spec_dict(), "bn": bn}, source=model)
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
    folded = False
    for layer in quant_layers(model).values():
        if getattr(layer, "bn", None) is not None:
            layer.fold_bn()
            folded = True
            if layer.weight_quantizer.method != "lsq":
                _calibrate_weights(layer)
    if folded:
        blueprint.record(model, {"op": "fold_simulated_bn"})


# --------------------------------------------------------------------------------------- summary
def is_quantized(model: nn.Module) -> bool:
    """True if ``model`` contains quantized layers (the export stage then writes QDQ ONNX)."""
    return any(isinstance(m, QUANT_LAYER_TYPES) for m in model.modules())


def weight_bits_of(module: nn.Module) -> int:
    """Bits per weight of a Conv/Linear module: its quantizer's ``bits``, 32 if float."""
    wq = getattr(module, "weight_quantizer", None)
    return int(getattr(wq, "bits", 32)) if wq is not None else 32
