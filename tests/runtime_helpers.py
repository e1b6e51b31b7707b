"""Helpers for the runtime tests: tiny ONNX graphs built with onnx.helper, run in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeflow.export.ort import ort_session

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]


def ort_run(path, feeds):
    return ort_session(path).run(None, feeds)


def save(nodes, inputs, outputs, inits, path):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=OPSET)
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def f32(v):
    return np.asarray(v, dtype=np.float32)


def i8(v):
    return np.asarray(v, dtype=np.int8)
