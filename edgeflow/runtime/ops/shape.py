"""Data movement on integers: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity.

Scale and zero point pass through unchanged. Reshape-like ops are views (``in_place``): the
planner lets their output share the input's buffer.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ops.base import Op


class Reshape(Op):
    kind = "reshape"
    in_place = True

    def __init__(self, name, x, y, shape=None, allowzero=0, flatten_axis=None, squeeze_axes=None, unsqueeze_axes=None):
        super().__init__(name, [x], [y])
        self.shape = None if shape is None else [int(v) for v in shape]
        self.allowzero = int(allowzero)
        self.flatten_axis = flatten_axis
        self.squeeze_axes = squeeze_axes
        self.unsqueeze_axes = unsqueeze_axes

    def target_shape(self, in_shape):
        if self.flatten_axis is not None:
            a = self.flatten_axis % (len(in_shape) + 1) if self.flatten_axis < 0 else self.flatten_axis
            return (int(np.prod(in_shape[:a])), int(np.prod(in_shape[a:])))
        if self.squeeze_axes is not None or (self.shape is None and self.unsqueeze_axes is None):
            axes = self.squeeze_axes
            if axes is None:
                return tuple(d for d in in_shape if d != 1)
            axes = {a % len(in_shape) for a in axes}
            for a in axes:
                if in_shape[a] != 1:
                    raise ValueError(f"cannot squeeze axis {a} of shape {tuple(in_shape)}")
            return tuple(d for i, d in enumerate(in_shape) if i not in axes)
        if self.unsqueeze_axes is not None:
            rank = len(in_shape) + len(self.unsqueeze_axes)
            axes = sorted(a % rank for a in self.unsqueeze_axes)
            out = list(in_shape)
            for a in axes:
                out.insert(a, 1)
            return tuple(out)
        shp = list(self.shape)
        if not self.allowzero:
            shp = [in_shape[i] if v == 0 else v for i, v in enumerate(shp)]
        return tuple(shp)

    def run(self, values, mode):
        x = values[0]
        return [x.reshape(self.target_shape(x.shape))]


class Transpose(Op):
    kind = "transpose"

    def __init__(self, name, x, y, perm=None):
        super().__init__(name, [x], [y])
        self.perm = None if perm is None else tuple(int(p) for p in perm)

    def run(self, values, mode):
        return [np.ascontiguousarray(np.transpose(values[0], self.perm))]
