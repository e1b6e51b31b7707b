"""Integer Pad (constant, reflect, edge); a constant pad value is quantized to the tensor's domain."""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ops.base import Op


class Pad(Op):
    kind = "pad"

    def __init__(self, name, x, y, pads, mode="constant", value=0, axes=None):
        super().__init__(name, [x], [y])
        self.pads = [int(p) for p in pads]
        self.mode = mode
        self.value = value
        self.axes = axes

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
