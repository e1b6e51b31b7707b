"""Cost rules of the IR's nodes: MACs, other ops, weights, and the flash bytes of a node's constants.

Read from public ``Node`` fields and static shapes (batch 1) only, so the profiler, the planner
and a code generator count the same thing: weights at their true bit-width (``weight_bits``,
rounded up to whole bytes), int32 biases, and one int32 multiplier + int32 shift per
requantization (per output channel for conv / fully connected).

Work is counted with the convention of ``edgeflow.hardware.graph`` (MLPerf Tiny's), so the runtime
profile and the analysis of the same model report equal ``macs`` and ``ops``: ``macs`` are the
multiply-accumulates of conv and fully connected nodes only; ``ops`` are the other elementary
operations — pooling window taps (global average pool: its input elements), residual-add and
standalone activation (clamp, softmax) output elements. Bias adds, requantization and the
quantize / dequantize at the graph boundary count in neither.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ir import Node

_REQUANT_PAIR = 8  # int32 multiplier + int32 shift


def weights(node: Node) -> np.ndarray | None:
    """The node's weight array (conv, fully connected with a constant operand), else None."""
    return node.params.get("weight")


def macs(node: Node, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]]) -> int:
    """Multiply-accumulates of one sample (batch 1 shapes): conv and fully connected nodes only."""
    k = node.kind
    if k == "conv":
        w = node.params["weight"].shape
        return int(np.prod(out_shapes[0][1:])) * int(w[1]) * int(np.prod(w[2:]))
    if k == "fully_connected":
        return int(np.prod(out_shapes[0][1:])) * int(in_shapes[0][-1])
    return 0


def ops(node: Node, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]]) -> int:
    """Elementary operations other than MACs of one sample (batch 1 shapes; see the module docstring)."""
    k = node.kind
    if k in ("max_pool", "avg_pool"):
        return int(np.prod(out_shapes[0][1:])) * int(np.prod(node.attrs["kernel"]))
    if k == "global_avg_pool":
        return int(np.prod(in_shapes[0][1:]))
    if k in ("add", "mul", "clamp", "softmax", "int_softmax", "lut", "hard_swish"):
        return int(np.prod(out_shapes[0][1:]))
    return 0


def weight_bytes(node: Node) -> int:
    """Dense weight storage at the node's ``weight_bits`` (0 without weights)."""
    w = weights(node)
    return 0 if w is None else (int(w.size) * int(node.attrs["weight_bits"]) + 7) // 8


def bias_bytes(node: Node) -> int:
    if node.kind in ("conv", "fully_connected") and "bias" in node.params:
        return 4 * int(node.params["bias"].size)
    if node.kind in ("add", "mul") and "const_b" in node.params:
        c = node.params["const_b"]
        return int(c.size) * c.itemsize
    return 0


def requant_bytes(node: Node) -> int:
    """Flash for the node's requantization parameters."""
    at = node.attrs
    k = node.kind
    if k in ("conv", "fully_connected"):
        return _REQUANT_PAIR * int(node.params["weight_scale"].size) if "out_scale" in at else 0
    if k == "mul":
        return _REQUANT_PAIR
    if k == "add":
        return 3 * _REQUANT_PAIR + 3 * 4  # three multiplier/shift pairs + three offsets
    if k == "avg_pool":
        same = np.float32(at["in_scale"]) == np.float32(at["out_scale"]) and at["in_zero_point"] == at["out_zero_point"]
        return 0 if same else _REQUANT_PAIR
    if k in ("global_avg_pool", "rescale"):
        return _REQUANT_PAIR
    return 0


def table_bytes(node: Node) -> int:
    """Flash for a lookup-table activation (``lut``): its table, one output byte per 8-bit input."""
    return 256 if node.kind == "lut" else 0


def flash_bytes(node: Node) -> int:
    """Weights (dense, at their bit-width) + biases + requantization parameters + activation tables."""
    return weight_bytes(node) + bias_bytes(node) + requant_bytes(node) + table_bytes(node)
