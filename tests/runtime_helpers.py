"""Helpers for the runtime tests: tiny ONNX graphs built with onnx.helper, run in onnxruntime, and
edgeflow's own QDQ exports of the zoo."""

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


ZOO = {"resnet8": ((3, 32, 32), 10), "dscnn": ((1, 49, 10), 12), "mobilenet_v1": ((3, 96, 96), 2),
       "tcn": ((1, 40), 10), "cnn": ((1, 8, 8), 10), "autoencoder": ((640,), 10), "mlp": ((1, 8, 8), 10)}


def zoo_quantized(name):
    """Zoo model ``name`` (seeded random weights, non-trivial BN statistics) quantized W8A8 by
    edgeflow and calibrated on random data, observers frozen: what ``zoo_qdq_export`` exports."""
    import torch

    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
    from edgeflow.models import build_model

    shape, classes = ZOO[name]
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    for module in model.modules():  # non-trivial BN statistics, so folding matters
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    quantized = quantize_model(model, shape, QuantConfig())
    calibrate(quantized, [(torch.randn(16, *shape), None) for _ in range(4)], 4)
    freeze_observers(quantized)
    return quantized


def zoo_qdq_export(name, out_dir, quantized=None):
    """``zoo_quantized(name)`` (or the given ``quantized`` model) exported as QDQ ONNX into ``out_dir``;
    returns the path."""
    from edgeflow.export.qdq import export_qdq

    return export_qdq(quantized if quantized is not None else zoo_quantized(name), ZOO[name][0],
                      out_dir / f"{name}.onnx")
