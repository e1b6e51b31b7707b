"""Data movement on integers: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity.

Scale and zero point pass through unchanged. Reshape-like ops are views (``Node.is_view``): the
planner lets their output share the input's buffer.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op
from edgeflow.runtime.shapes import reshape_target


class Reshape(Op):
    """A view with the target shape of ``edgeflow.runtime.shapes.reshape_target``."""

    kind = "reshape"

    def run(self, values, mode):
        x = values[0]
        return [x.reshape(reshape_target(self.node.attrs, x.shape))]


class Transpose(Op):
    kind = "transpose"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        perm = node.attrs["perm"]
        self.perm = None if perm is None else tuple(int(p) for p in perm)

    def run(self, values, mode):
        return [np.ascontiguousarray(np.transpose(values[0], self.perm))]
