"""edgeflow's own QDQ exports of the zoo run bit-equal in the int8 runtime and in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import edgeflow.runtime as rt
from edgeflow.export.ort import ort_session
from edgeflow.export.qdq import export_qdq
from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
from edgeflow.models import build_model

ZOO = {"resnet8": ((3, 32, 32), 10), "dscnn": ((1, 49, 10), 12), "mobilenet_v1": ((3, 96, 96), 2),
       "tcn": ((1, 40), 10), "cnn": ((1, 8, 8), 10), "autoencoder": ((640,), 10)}


@pytest.mark.parametrize("name", list(ZOO))
def test_ptq_export_bit_equal_to_onnxruntime(tmp_path: Path, name: str) -> None:
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
    path = export_qdq(quantized, shape, tmp_path / f"{name}.onnx")

    x = np.random.default_rng(1).normal(0, 1, (32, *shape)).astype(np.float32)
    session = ort_session(path)
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    got = rt.load(path).run(x)[0]
    assert np.mean(got == expected) >= 0.9999, f"{name}: {np.mean(got == expected):.6f} bit-equal"
    assert (got.argmax(1) == expected.argmax(1)).all()
