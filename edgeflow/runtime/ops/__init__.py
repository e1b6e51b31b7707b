"""Integer kernels of the reference runtime, one op kind per module (TFLite Micro style).

``conv`` (1-D/2-D, groups, depthwise), ``fully_connected`` (gemm/matmul), ``add``, ``pool``
(max/average/global average), ``shape`` (reshape/flatten/squeeze/unsqueeze/transpose),
``concat``, ``pad``, ``rescale`` (requantize, clamps), ``boundary`` (input quantize, output
dequantize, float softmax), ``int_softmax`` (int8 softmax), ``mul``, ``lut`` (logistic, tanh), ``hard_swish``. All share the requantization helpers of ``edgeflow.runtime.quant``.
``build(node)`` makes the kernel of one IR node (``edgeflow.runtime.ir``).
"""

from __future__ import annotations

from edgeflow.runtime.errors import RuntimeModelError
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.add import Add
from edgeflow.runtime.ops.base import Op
from edgeflow.runtime.ops.boundary import Dequantize, Quantize, Softmax
from edgeflow.runtime.ops.concat import Concat
from edgeflow.runtime.ops.conv import Conv
from edgeflow.runtime.ops.fully_connected import FullyConnected
from edgeflow.runtime.ops.hard_swish import HardSwish
from edgeflow.runtime.ops.int_softmax import IntSoftmax
from edgeflow.runtime.ops.lut import Lut
from edgeflow.runtime.ops.mul import Mul
from edgeflow.runtime.ops.pad import Pad
from edgeflow.runtime.ops.pool import AveragePool, GlobalAveragePool, MaxPool
from edgeflow.runtime.ops.rescale import Clamp, Rescale
from edgeflow.runtime.ops.shape import Reshape, Transpose

KERNELS: dict[str, type[Op]] = {k.kind: k for k in (
    Quantize, Dequantize, Softmax, Conv, FullyConnected, Add, AveragePool, GlobalAveragePool, MaxPool, Concat,
    Rescale, Clamp, Reshape, Transpose, Pad, IntSoftmax, Mul, Lut, HardSwish)}


def build(node: Node) -> Op:
    """The kernel of ``node`` (its Prepare step runs here); unknown kinds and bad fields raise
    ``RuntimeModelError`` naming the node."""
    cls = KERNELS.get(node.kind)
    if cls is None:
        raise RuntimeModelError(f"node {node.name!r}: no kernel for kind {node.kind!r}")
    try:
        return cls(node)
    except (KeyError, ValueError, TypeError) as exc:
        raise RuntimeModelError(f"node {node.name!r} ({node.kind}): {type(exc).__name__}: {exc}") from None
