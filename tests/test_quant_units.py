"""Quantization building blocks: quantizer arithmetic, STE, BN folding (exact to 1e-5 on the zoo),
layer conversion, per-layer bit-widths, the QAT callback and the stage schemas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeflow.core.errors import ConfigError
from edgeflow.methods.quantization import (
    ActQuantizer,
    BinaryWeightQuantizer,
    PowerOfTwoWeightQuantizer,
    QConv2d,
    QuantConfig,
    WeightQuantizer,
    calibrate,
    fake_quant,
    find_bn_pairs,
    fold_batchnorm,
    freeze_observers,
    is_quantized,
    quant_layers,
    quant_summary,
    quantize_model,
)
from edgeflow.models import build_model

torch.set_num_threads(2)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("name,shape", [("cnn", (1, 8, 8)), ("resnet8", (3, 32, 32)), ("tcn", (1, 40)),
                                        ("dscnn", (1, 49, 10)), ("mobilenet_v1", (3, 32, 32))])
def test_bn_folding_is_exact_on_the_zoo(name: str, shape: tuple) -> None:
    torch.manual_seed(0)
    model = randomize_bn(build_model(name, shape, 10))
    x = torch.randn(8, *shape)
    with torch.no_grad():
        ref = model(x)
        n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
        pairs = fold_batchnorm(model)
        out = model(x)
    assert len(pairs) == n_bn > 0  # every BN follows a conv: all folded, found through the graph
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5), (out - ref).abs().max()


def test_bn_after_relu_is_left_alone_and_linear_bn_folds() -> None:
    model = randomize_bn(nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.BatchNorm1d(5),
                                       nn.Linear(5, 3)))
    assert find_bn_pairs(model) == [("0", "1")]
    x = torch.randn(4, 6)
    with torch.no_grad():
        ref = model(x)
        fold_batchnorm(model)
        assert torch.allclose(model(x), ref, atol=1e-5)
    assert isinstance(model[1], nn.Identity) and isinstance(model[3], nn.BatchNorm1d)


def test_fake_quant_matches_the_int8_formula_and_passes_gradients() -> None:
    x = torch.tensor([-1.0, -0.26, 0.0, 0.25, 0.3, 5.0], requires_grad=True)
    s, z = torch.tensor(0.01), torch.tensor(-128.0)
    y = fake_quant(x, s, z, -128, 127)
    q = torch.clamp(torch.round(x.detach() / s) + z, -128, 127)
    assert torch.equal(y.detach(), (q - z) * s)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]  # STE inside the range, 0 where clipped


def test_weight_quantizer_is_symmetric_per_channel() -> None:
    w = torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 0.1, 1.0, 10.0]).view(-1, 1, 1, 1)
    wq = WeightQuantizer(8, 4, per_channel=True)
    q, s = wq.quantize_int(w)
    assert q.abs().max() == 127 and q.min() >= -127
    assert torch.allclose(s, w.abs().amax(dim=(1, 2, 3)) / 127)
    assert torch.allclose(wq(w), q * s.view(-1, 1, 1, 1))
    assert (wq(w) - w).abs().amax(dim=(1, 2, 3)).le(s / 2 + 1e-7).all()
    per_tensor = WeightQuantizer(8, 4, per_channel=False)
    assert per_tensor.quantize_int(w)[1].numel() == 1
    assert (per_tensor(w)[0] == 0).all()  # the smallest channel collapses to zero per tensor


def test_binary_weights_sign_times_mean_abs_with_clipped_ste_and_masks() -> None:
    w = torch.tensor([[0.5, -0.2, 1.5, -2.0], [0.1, 0.1, -0.1, 0.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    bq = BinaryWeightQuantizer(2)
    y = bq(w, mask)
    assert torch.allclose(y[0], torch.tensor([1.0, -1.0, 1.0, 0.0]) * (2.2 / 3))
    assert torch.allclose(y[1], torch.tensor([1.0, 1.0, -1.0, 1.0]) * 0.075)
    bq.freeze()  # fixed α: only the sign's straight-through gradient remains
    bq(w, mask).sum().backward()
    assert w.grad[0].tolist() == [pytest.approx(2.2 / 3), pytest.approx(2.2 / 3), 0.0, 0.0]  # |w| > 1, mask 0
    assert bq.bits == 1


def test_power_of_two_levels() -> None:
    w = torch.tensor([[6.4, 3.0, -1.3, 0.3, 0.04, 0.0]])
    pq = PowerOfTwoWeightQuantizer(4, 1)
    q, s = pq.quantize_int(w)
    assert torch.allclose(s, torch.tensor([0.1]))
    assert q.tolist() == [[64, 32, -16, 4, 0, 0]]  # powers of two (≤ 64), or zero
    assert torch.allclose(pq(w), q * 0.1)


@pytest.mark.parametrize("method", ["minmax", "ema", "percentile", "mse"])
def test_act_observers_cover_the_data(method: str) -> None:
    aq = ActQuantizer(8, method, fused_relu=True)
    aq.calibrating = True
    torch.manual_seed(0)
    for _ in range(4):
        aq(torch.randn(1000) * 2)
    aq.calibrating = False
    aq.freeze()
    assert aq.zero_point.item() == -128  # range starts at 0 after a fused ReLU
    assert 2.0 < aq.scale.item() * 255 < 9.0


def test_conversion_keeps_buffers_classes_and_first_last_bits() -> None:
    model = build_model("cnn", (1, 8, 8), 10, channels=(8, 16, 16)).eval()
    conv = model.features[2][0]
    conv.register_buffer("weight_mask", (torch.rand_like(conv.weight) > 0.5).float())
    with torch.no_grad():
        conv.weight.mul_(conv.weight_mask)
    q = quantize_model(model, (1, 8, 8), QuantConfig(weight_bits=4, first_layer_bits=8, last_layer_bits=8,
                                                     overrides={"features.4.*": {"weight_bits": 2},
                                                                "re:classifier": {"act_bits": 8}}))
    assert is_quantized(q) and not is_quantized(model)
    layers = quant_layers(q)
    assert {k: v.weight_quantizer.bits for k, v in layers.items()} == {
        "features.0.0": 8, "features.2.0": 4, "features.4.0": 2, "classifier": 8}
    qconv = layers["features.2.0"]
    assert isinstance(qconv, QConv2d) and isinstance(qconv, nn.Conv2d)
    assert torch.equal(qconv.weight_mask, conv.weight_mask)
    calibrate(q, [torch.rand(16, 1, 8, 8)])
    freeze_observers(q)
    assert (qconv.weight_quantizer(qconv.weight)[qconv.weight_mask == 0] == 0).all()  # sparsity survives
    n = {k: v.weight.numel() for k, v in layers.items()}
    expected = n["features.0.0"] + n["features.2.0"] // 2 + n["features.4.0"] // 4 + n["classifier"]
    assert quant_summary(q)["weight_bytes"] == expected


def test_qat_callback_freezes_on_schedule() -> None:
    from edgeflow.methods.quantization.callbacks import QATCallback

    q = quantize_model(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), QuantConfig(act_method="ema"),
                       bn="simulate")
    cb = QATCallback(freeze_observers_epoch=1, freeze_bn_epoch=2)

    class Trainer:
        current_epoch = 0

    trainer = Trainer()
    cb.on_train_epoch_start(trainer, q)
    assert all(m.act_quantizer.observing for m in quant_layers(q).values())
    trainer.current_epoch = 1
    cb.on_train_epoch_start(trainer, q)
    assert not any(m.act_quantizer.observing for m in quant_layers(q).values())
    assert not any(m.bn_frozen for m in quant_layers(q).values())
    trainer.current_epoch = 2
    cb.on_train_epoch_start(trainer, q)
    assert all(m.bn_frozen for m in quant_layers(q).values() if m.bn is not None)


def test_stage_schemas_reject_bad_values_in_one_line() -> None:
    from edgeflow.stages import ptq, qat

    assert ptq.Config(kind="ptq").weight_bits == 8
    assert qat.Config(kind="qat").act_method == "ema"
    for cls, kw, key in [
        (ptq.Config, {"weight_bits": 9}, "weight_bits"),
        (ptq.Config, {"act_method": "lsq"}, "act_method"),  # learnable ranges need training
        (ptq.Config, {"weight_format": "pow2", "weight_bits": 8}, "weight_bits"),
        (ptq.Config, {"overrides": {"fc": {"bits": 4}}}, "overrides.fc.bits"),
        (qat.Config, {"freeze_bn_epoch": -2}, "freeze_bn_epoch"),
        (qat.Config, {"bn": "keep"}, "bn"),
        (qat.Config, {"max_epochs": 0}, "max_epochs"),
    ]:
        with pytest.raises(ConfigError) as err:
            cls(kind="x", **kw)
        assert err.value.key == key and "\n" not in str(err.value)
