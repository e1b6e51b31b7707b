"""What an fx node computes, by data flow and module type, never by module name.

Used by BN folding, quantization and QDQ export: a ReLU is fused into the producer whose output
reaches it through shape-only ops; value-preserving ops need no quantizer of their own; residual
adds, concatenations and average pools do.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn
from torch.nn import functional as F

from edgeflow.graph.trace import module_of

RELU_FUNCS = {F.relu, torch.relu, torch.relu_}
ADD_FUNCS = {operator.add, torch.add, operator.iadd}
CAT_FUNCS = {torch.cat, torch.concat}
FLATTEN_FUNCS = {torch.flatten}
SHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "permute", "transpose"}
MAXPOOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d)
AVGPOOL_TYPES = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
IDENTITY_TYPES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)


def is_relu(gm: nn.Module, node: fx.Node) -> bool:
    """True for a ReLU module, ``F.relu`` / ``torch.relu`` call or ``.relu()`` method."""
    if node.op == "call_module":
        return isinstance(module_of(gm, node), nn.ReLU)
    if node.op == "call_function":
        return node.target in RELU_FUNCS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def is_add(node: fx.Node) -> bool:
    """True for an addition of two graph values (a residual add; not a tensor + constant)."""
    if node.op == "call_function" and node.target in ADD_FUNCS:
        return all(isinstance(a, fx.Node) for a in node.args[:2])
    return node.op == "call_method" and node.target == "add" and isinstance(node.args[1], fx.Node)


def is_transparent(gm: nn.Module, node: fx.Node) -> bool:
    """Value-preserving ops: every output element is an input element or 0 (shape ops, indexing,
    identity / dropout, max-pool, ReLU, zero padding), so a quantized input stays on its grid."""
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
