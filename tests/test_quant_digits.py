"""Quantization on real data (scikit-learn digits): PTQ, QAT down to binary, per-channel vs per-tensor,
and the QDQ export run in onnxruntime on its integer kernels.

A small residual CNN (conv-BN-ReLU stem, one residual block, max-pool, conv, global average pool,
linear) is trained once per module in plain PyTorch (a few seconds on 2 cores).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from edgeflow.export.ort import float_compute_op_types, integer_op_types, run_onnx
from edgeflow.export.qdq import export_qdq, weight_bits_metadata
from edgeflow.methods.quantization import (
    QuantConfig,
    calibrate,
    fold_simulated_bn,
    freeze_observers,
    quant_layers,
    quant_summary,
    quantize_model,
)

SHAPE = (1, 8, 8)


class ResCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.c1 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.c3 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.relu(self.c2(self.c1(x)) + x)
        x = self.c3(self.pool(x))
        return self.fc(torch.flatten(self.gap(x), 1))


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, *SHAPE)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return {"xtr": torch.tensor(xtr), "ytr": torch.tensor(ytr), "xte": torch.tensor(xte), "yte": torch.tensor(yte)}


def train(model: nn.Module, data: dict, epochs: int, lr: float, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    xtr, ytr = data["xtr"], data["ytr"]
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def accuracy(model: nn.Module, data: dict) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(data["xte"]).argmax(1) == data["yte"]).float().mean() * 100)


def calib(data: dict) -> list[torch.Tensor]:
    return [data["xtr"][i:i + 64] for i in range(0, 512, 64)]


@pytest.fixture(scope="module")
def float_model(data: dict) -> tuple[nn.Module, float]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = train(ResCNN(), data, epochs=12, lr=3e-3)
    acc = accuracy(model, data)
    assert acc >= 97.0
    return model, acc


def ptq(model: nn.Module, data: dict, bn: str = "fold", **kw: object) -> nn.Module:
    q = quantize_model(model, SHAPE, QuantConfig(**kw), bn=bn)
    calibrate(q, calib(data))
    freeze_observers(q)
    return q


def qat(model: nn.Module, data: dict, epochs: int = 4, bn: str = "fold", **kw: object) -> nn.Module:
    q = quantize_model(model, SHAPE, QuantConfig(**kw), bn=bn)
    calibrate(q, calib(data))
    train(q, data, epochs=epochs, lr=1e-3)
    fold_simulated_bn(q)
    freeze_observers(q)
    return q


@pytest.fixture(scope="module")
def ptq_int8(float_model: tuple[nn.Module, float], data: dict) -> nn.Module:
    return ptq(float_model[0], data)


def test_ptq_int8_drops_at_most_half_a_point(float_model: tuple, ptq_int8: nn.Module, data: dict) -> None:
    model, float_acc = float_model
    assert float_acc - accuracy(ptq_int8, data) <= 0.5
    s = quant_summary(ptq_int8)
    n = sum(m.weight.numel() for m in quant_layers(ptq_int8).values())
    assert s["weight_bits"] == 8 and s["weight_bytes"] == n and s["size_ratio"] == 4.0
    assert accuracy(model, data) == float_acc  # the float model is left untouched


@pytest.mark.parametrize("kw", [dict(act_method="ema"), dict(act_method="percentile", percentile=99.99),
                                dict(act_method="mse"), dict(weight_method="mse"),
                                dict(weight_method="percentile", percentile=99.999)])
def test_every_calibration_method_keeps_int8_accuracy(float_model: tuple, data: dict, kw: dict) -> None:
    model, float_acc = float_model
    assert float_acc - accuracy(ptq(model, data, **kw), data) <= 1.0


def test_qat_w4a8_drops_at_most_one_point(float_model: tuple, data: dict) -> None:
    model, float_acc = float_model
    q = qat(model, data, weight_bits=4, act_bits=8, act_method="ema")
    assert float_acc - accuracy(q, data) <= 1.0
    assert quant_summary(q)["weight_bits"] == 4.0
    for layer in quant_layers(q).values():  # the weights really sit on the 4-bit grid
        w = layer.weight_quantizer(layer.weight).detach()
        s = layer.weight_quantizer.scale.view(-1, *([1] * (w.ndim - 1)))
        codes = torch.round(w / s)
        assert codes.abs().max() <= 7 and torch.allclose(codes * s, w, atol=1e-6)


BINARY = dict(weight_bits=1, first_layer_bits=8, last_layer_bits=8, act_method="ema")


@pytest.fixture(scope="module")
def binary_qat(float_model: tuple, data: dict) -> nn.Module:
    return qat(float_model[0], data, **BINARY)


@pytest.mark.parametrize("kw,min_acc", [
    (dict(weight_bits=2, weight_method="mse", act_method="ema"), 80.0),
    (BINARY, 90.0),
    (dict(weight_bits=4, weight_format="pow2", act_method="ema"), 95.0),
    (dict(weight_bits=4, act_bits=4, weight_method="lsq", act_method="lsq"), 90.0),
    (dict(weight_bits=4, act_bits=4, act_method="pact"), 90.0),
    (dict(weight_bits=4, act_method="ema", bn="simulate"), 95.0),
], ids=["2bit", "binary", "pow2", "lsq", "pact", "simulated-bn"])
def test_low_bit_qat_completes_and_reports(float_model: tuple, data: dict, kw: dict, min_acc: float,
                                           request: pytest.FixtureRequest) -> None:
    q = request.getfixturevalue("binary_qat") if kw is BINARY else qat(float_model[0], data, **kw)
    acc = accuracy(q, data)
    assert acc >= min_acc, acc
    bits = {name: layer.weight_quantizer.bits for name, layer in quant_layers(q).items()}
    if kw["weight_bits"] == 1:
        assert bits == {"stem.0": 8, "c1.0": 1, "c2.0": 1, "c3.0": 1, "fc": 8}
        c1 = q.get_submodule("c1.0")
        w = c1.weight_quantizer(c1.weight).detach()
        alpha = c1.weight_quantizer.scale  # per-channel mean |w|, fixed at freeze
        assert torch.allclose(alpha, c1.weight.detach().abs().mean(dim=(1, 2, 3)), rtol=1e-2)
        assert torch.equal(w.abs(), alpha.view(-1, 1, 1, 1).expand_as(w))
    else:
        assert set(bits.values()) == {kw["weight_bits"]}
    assert all(getattr(layer, "bn", None) is None for layer in quant_layers(q).values())


def test_per_channel_beats_per_tensor_when_channel_ranges_differ(float_model: tuple, data: dict) -> None:
    """Channels of c3 rescaled by 10^-1.5 … 10^1.5, compensated exactly in its BatchNorm statistics:
    the float function is unchanged, the weight ranges differ by 1000× (the MobileNetV2 case)."""
    model = copy.deepcopy(float_model[0])
    conv, bn = model.c3[0], model.c3[1]
    k = torch.logspace(-1.5, 1.5, 32)[torch.randperm(32, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        conv.weight.mul_(k.view(-1, 1, 1, 1))
        bn.running_mean.mul_(k)
        bn.running_var.mul_(k ** 2)
        bn.eps = bn.eps * 1e-4
    float_acc = accuracy(model, data)
    assert abs(float_acc - float_model[1]) <= 0.3
    per_channel = accuracy(ptq(model, data, act_bits=32, bn="keep", per_channel=True), data)
    per_tensor = accuracy(ptq(model, data, act_bits=32, bn="keep", per_channel=False), data)
    assert float_acc - per_channel <= 0.5
    assert per_channel - per_tensor >= 5.0, (per_channel, per_tensor)


# ----------------------------------------------------------------------------------------- export
def export_and_check(q: nn.Module, data: dict, path: Path) -> tuple[float, float, list[str]]:
    export_qdq(q, SHAPE, path)
    torch_acc = accuracy(q, data)
    logits = run_onnx(path, data["xte"])
    ort_acc = float((logits.argmax(1) == data["yte"].numpy()).mean() * 100)
    return torch_acc, ort_acc, integer_op_types(path)


def test_int8_export_runs_on_integer_kernels_and_matches_torch(ptq_int8: nn.Module, data: dict,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "int8.onnx"
    torch_acc, ort_acc, ops = export_and_check(ptq_int8, data, path)
    assert abs(ort_acc - torch_acc) <= 0.3
    assert {"QLinearConv", "QGemm", "QLinearAdd", "QLinearGlobalAveragePool"} <= set(ops)
    assert float_compute_op_types(path) == []  # no Conv / Gemm / Add left in float
    assert "QLinearConv" in integer_op_types(path, int8_allowed=False)  # x86 default (s8 -> u8) too

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    for name, layer in quant_layers(ptq_int8).items():
        w = inits[f"{name}.weight_q"]
        assert w.data_type == onnx.TensorProto.INT8
        arr = onnx.numpy_helper.to_array(w)
        assert arr.shape == tuple(layer.weight.shape) and np.abs(arr).max() <= 127
        assert inits[f"{name}.bias_q"].data_type == onnx.TensorProto.INT32
        zp = onnx.numpy_helper.to_array(inits[f"{name}.weight_zp"])
        assert zp.shape == (layer.weight.shape[0],) and not zp.any()  # per-channel, zero point 0
    assert model.opset_import[0].version == 17
    bits = weight_bits_metadata(path)
    weight_bytes = sum(int(np.ceil(onnx.numpy_helper.to_array(inits[k]).size * b / 8))
                       for k, b in bits.items() if k.endswith(".weight_q"))
    assert weight_bytes == quant_summary(ptq_int8)["weight_bytes"]


def test_mixed_and_binary_export_keep_true_bit_widths(binary_qat: nn.Module, data: dict, tmp_path: Path) -> None:
    q = binary_qat
    path = tmp_path / "binary.onnx"
    torch_acc, ort_acc, ops = export_and_check(q, data, path)
    assert abs(ort_acc - torch_acc) <= 0.3
    assert "QLinearConv" in ops
    bits = weight_bits_metadata(path)
    assert bits["stem.0.weight_q"] == 8 and bits["c1.0.weight_q"] == 1 and bits["fc.weight_q"] == 8
    arr = onnx.numpy_helper.to_array({i.name: i for i in onnx.load(str(path)).graph.initializer}["c1.0.weight_q"])
    assert set(np.unique(arr)) <= {-1, 1}
    s = quant_summary(q)
    n = {name: layer.weight.numel() for name, layer in quant_layers(q).items()}
    assert s["weight_bytes"] == n["stem.0"] + n["fc"] + sum((n[k] + 7) // 8 for k in ("c1.0", "c2.0", "c3.0"))
