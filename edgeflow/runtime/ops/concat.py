"""Integer concatenation; inputs whose scale/zero point differ from the output's are rescaled
first (onnxruntime ``QLinearConcat``: a copy when parameters match, else Q(DQ(x)))."""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op
from edgeflow.runtime.ops.rescale import rescale


class Concat(Op):
    kind = "concat"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.axis = int(at["axis"])
        self.in_params = list(zip(at["in_scales"], at["in_zero_points"]))  # [(scale, zp)] per input
        self.sy, self.zpy, self.out_dtype = np.float32(at["out_scale"]), int(at["out_zero_point"]), np.dtype(at["out_dtype"])

    def run(self, values, mode):
        parts = []
        for v, (s, zp) in zip(values, self.in_params):
            if np.float32(s) == self.sy and int(zp) == self.zpy and v.dtype == self.out_dtype:
                parts.append(v)
            else:
                parts.append(rescale(v, s, zp, self.sy, self.zpy, self.out_dtype, mode))
        return [np.concatenate(parts, axis=self.axis)]
