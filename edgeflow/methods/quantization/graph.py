"""The module graph (torch.fx), shared by BN folding, quantization and QDQ export.

Patterns are found by following data flow in the traced graph, never by module names: a BatchNorm
is folded into the conv/linear whose output it alone consumes; a ReLU is fused into the producer
whose output reaches it through shape-only ops; residual adds, concatenations and average pools
get their own activation quantizer.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from edgeflow.methods.quantization.layers import QUANT_LAYER_TYPES
from edgeflow.methods.quantization.quantizers import (
    ActQuantizer,
    BinaryWeightQuantizer,
    PowerOfTwoWeightQuantizer,
    WeightQuantizer,
)

LEAF_TYPES: tuple[type[nn.Module], ...] = (
    *QUANT_LAYER_TYPES, ActQuantizer, WeightQuantizer, BinaryWeightQuantizer, PowerOfTwoWeightQuantizer,
)


class QuantTracer(fx.Tracer):
    """fx tracer that keeps torch.nn modules and edgeflow's quantized layers / quantizers as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (raises a clear error for untraceable control flow)."""
    if isinstance(model, fx.GraphModule):
        graph = QuantTracer().trace(model)
        return fx.GraphModule(model, graph, model.__class__.__name__)
    try:
        graph = QuantTracer().trace(model)
    except Exception as err:  # noqa: BLE001 - fx raises many kinds
        raise RuntimeError(f"quantization needs a torch.fx-traceable model; tracing "
                           f"{type(model).__name__} failed: {err}") from err
    return fx.GraphModule(model, graph, type(model).__name__)


# ------------------------------------------------------------------------------ op classification
RELU_FUNCS = {F.relu, torch.relu, torch.relu_}
ADD_FUNCS = {operator.add, torch.add, operator.iadd}
CAT_FUNCS = {torch.cat, torch.concat}
FLATTEN_FUNCS = {torch.flatten}
SHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "permute", "transpose"}
MAXPOOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d)
AVGPOOL_TYPES = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
IDENTITY_TYPES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)


def module_of(gm: nn.Module, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


def is_relu(gm: nn.Module, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(module_of(gm, node), nn.ReLU)
    if node.op == "call_function":
        return node.target in RELU_FUNCS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def is_add(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in ADD_FUNCS:
        return all(isinstance(a, fx.Node) for a in node.args[:2])
    return node.op == "call_method" and node.target == "add" and isinstance(node.args[1], fx.Node)


def is_transparent(gm: nn.Module, node: fx.Node) -> bool:
    """Ops whose output stays on the input's quantization grid (no new quantizer needed)."""
    if node.op == "call_module":
        m = module_of(gm, node)
        return isinstance(m, (*IDENTITY_TYPES, *MAXPOOL_TYPES, nn.Flatten, nn.ReLU, nn.ZeroPad2d,
                              nn.ConstantPad1d))
    if node.op == "call_function":
        return node.target in RELU_FUNCS or node.target in FLATTEN_FUNCS or node.target in (
            operator.getitem, F.max_pool1d, F.max_pool2d, F.dropout, torch.squeeze, torch.unsqueeze)
    if node.op == "call_method":
        return node.target in SHAPE_METHODS or node.target in ("relu", "relu_")
    return False


def is_shape_only(gm: nn.Module, node: fx.Node) -> bool:
    """Transparent ops that commute with an element-wise ReLU (all but the ReLU itself; max-pool does)."""
    return is_transparent(gm, node) and not is_relu(gm, node)


def relu_after(gm: nn.Module, node: fx.Node) -> fx.Node | None:
    """The ReLU that alone consumes ``node``'s output (through single-user shape-only ops), if any."""
    cur = node
    for _ in range(8):
        if len(cur.users) != 1:
            return None
        (nxt,) = cur.users
        if is_relu(gm, nxt):
            return nxt
        if not is_shape_only(gm, nxt):
            return None
        cur = nxt
    return None


def produces_tensor(node: fx.Node) -> bool:
    meta = node.meta.get("tensor_meta")
    return meta is not None and hasattr(meta, "shape")


def shape_prop(gm: fx.GraphModule, example: torch.Tensor) -> None:
    from torch.fx.passes.shape_prop import ShapeProp

    was = gm.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    gm.train(was)


def parent_and_attr(root: nn.Module, qualname: str) -> tuple[nn.Module, str]:
    if "." in qualname:
        parent, attr = qualname.rsplit(".", 1)
        return root.get_submodule(parent), attr
    return root, qualname


def set_submodule(root: nn.Module, qualname: str, module: nn.Module) -> None:
    parent, attr = parent_and_attr(root, qualname)
    setattr(parent, attr, module)


def node_kwargs(node: fx.Node) -> dict[str, Any]:
    return dict(node.kwargs)
