"""Integer Pad (constant, reflect, edge); a constant pad value is quantized to the tensor's domain."""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op


class Pad(Op):
    kind = "pad"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.pads = [int(p) for p in at["pads"]]
        self.mode = at["mode"]
        self.value = at["value"]
        self.axes = at["axes"]

    def run(self, values, mode):
        x = values[0]
        r = x.ndim
        axes = list(range(r)) if self.axes is None else [a % r for a in self.axes]
        n = len(axes)
        width = [(0, 0)] * r
        for i, a in enumerate(axes):
            width[a] = (self.pads[i], self.pads[i + n])
        if any(b < 0 or e < 0 for b, e in width):
            raise ValueError("negative pads are not supported")
        if self.mode == "constant":
            return [np.pad(x, width, mode="constant", constant_values=self.value)]
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[self.mode])]
