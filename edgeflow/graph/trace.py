"""torch.fx tracing with edgeflow's leaf rule, shape propagation, and node / module helpers.

One tracer for every graph pass (BN folding, quantization, QDQ export, structured pruning, channel
groups). Its leaves, the modules kept as one ``call_module`` node instead of being traced through:

- torch.nn's own modules (the fx default, ``nn.Sequential`` excepted);
- every Conv / Linear / BatchNorm subclass, wherever it is defined (quantized layers), so their
  channels and weights stay visible;
- quantizer modules (:func:`is_quantizer`: an integer ``bits`` attribute, the convention of
  edgeflow's fake-quantizers, also read by the hardware analysis).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

STRUCTURAL_LEAVES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm,
)


def is_quantizer(m: nn.Module) -> bool:
    """True for a quantizer module: it has an integer ``bits`` attribute and is not a Conv/Linear."""
    bits = getattr(m, "bits", None)
    return isinstance(bits, int) and not isinstance(bits, bool) and not isinstance(
        m, (nn.modules.conv._ConvNd, nn.Linear))


class Tracer(fx.Tracer):
    """fx tracer whose leaves follow the module docstring's rule."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (isinstance(m, STRUCTURAL_LEAVES) or is_quantizer(m)
                or super().is_leaf_module(m, module_qualified_name))


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model``; the GraphModule shares its submodules and keeps its class name.

    Raises ``ValueError`` naming the model when its forward is not traceable (data-dependent
    control flow, unsupported Python).
    """
    try:
        graph = Tracer().trace(model)
    except Exception as err:  # noqa: BLE001 - fx raises many kinds
        raise ValueError(f"edgeflow's graph passes need a torch.fx-traceable forward; tracing "
                         f"{type(model).__name__} failed: {err}") from err
    return fx.GraphModule(model, graph, type(model).__name__)


def example_input(model: nn.Module, input_shape: Iterable[int], batch: int = 2) -> torch.Tensor:
    """Zeros of shape ``(batch, *input_shape)`` on the device and floating dtype of ``model``'s
    first parameter (float32 on the CPU when it has none)."""
    p = next(model.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    return torch.zeros((batch, *(int(s) for s in input_shape)), dtype=dtype, device=device)


def shape_prop(gm: fx.GraphModule, example: torch.Tensor) -> None:
    """Annotate every node with ``meta["tensor_meta"]`` by running ``example`` in eval mode without
    gradients; ``gm`` (and its shared submodules) get its training flag back afterwards."""
    from torch.fx.passes.shape_prop import ShapeProp

    was = gm.training
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    finally:
        gm.train(was)


def trace_with_shapes(model: nn.Module, input_shape: Iterable[int], batch: int = 2) -> fx.GraphModule:
    """:func:`trace` then :func:`shape_prop` on :func:`example_input` (``input_shape`` has no batch)."""
    gm = trace(model)
    shape_prop(gm, example_input(model, input_shape, batch))
    return gm


def shape_of(node: fx.Node) -> tuple[int, ...] | None:
    """The node's output shape from :func:`shape_prop`, or None for a non-tensor (or unannotated) node."""
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def produces_tensor(node: fx.Node) -> bool:
    """True when :func:`shape_prop` recorded a single tensor as the node's output."""
    return shape_of(node) is not None


def input_nodes(arg: Any) -> list[fx.Node]:
    """Every ``fx.Node`` inside ``arg`` (nested tuples, lists and dicts of node arguments)."""
    out: list[fx.Node] = []
    fx.node.map_arg(arg, out.append)
    return out


def module_of(gm: nn.Module, node: fx.Node) -> nn.Module | None:
    """The module a ``call_module`` node calls; None for any other node."""
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


def set_submodule(root: nn.Module, qualname: str, module: nn.Module) -> None:
    """Replace (or add) the submodule at the dotted ``qualname`` of ``root``."""
    parent, _, attr = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)
