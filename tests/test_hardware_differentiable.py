"""Differentiable costs equal the exact estimate on hard inputs and carry gradients."""

import pytest
import torch

from edgeflow.hardware import analyze, load
from edgeflow.hardware.differentiable import (BitChoice, conv_macs, expected_bits, expected_channels,
                                              soft_layer_cost, soft_model_cost)
from edgeflow.models import build_model

CHOICES = (2, 4, 8)


@pytest.mark.parametrize("target", ["cortex_m4", "gap9"])
@pytest.mark.parametrize("bits", CHOICES)
def test_one_hot_equals_exact(target, bits):
    hw = load(target)
    model = build_model("resnet8", (3, 32, 32), 10)
    exact = hw.estimate(analyze(model, (3, 32, 32), default_bits=bits), warn=False)
    nominal = analyze(model, (3, 32, 32), default_bits=8)
    i = CHOICES.index(bits)
    onehot = {layer.name: BitChoice(torch.nn.functional.one_hot(torch.tensor(i), 3).float(), CHOICES)
              for layer in nominal.layers}
    soft = soft_model_cost(hw, nominal, bits=onehot, act_bits=onehot)
    # rel 1e-6: the exact model rounds sub-byte tensors up to whole bytes (e.g. 10 x 2-bit outputs = 3 B)
    assert soft["latency_ms"].item() == pytest.approx(exact.latency_ms, rel=1e-6)
    assert soft["energy_uj"].item() == pytest.approx(exact.energy_uj, rel=1e-6)
    assert soft["flash_bytes"].item() == pytest.approx(exact.flash_bytes, rel=1e-9)
    assert soft["macs"].item() == exact.macs


def test_hard_channels_equal_exact_and_gradients_flow():
    hw = load("cortex_m4")
    wide = build_model("dscnn", (1, 49, 10), 12)
    narrow = build_model("dscnn", (1, 49, 10), 12, width=48)
    cost_w = analyze(wide, (1, 49, 10), default_bits=8)
    exact = hw.estimate(analyze(narrow, (1, 49, 10), default_bits=8))
    # every conv layer keeps 48 of its 64 channels (the stem's input stays 1)
    keep = torch.full((64,), 0.75, requires_grad=True)
    c = expected_channels(keep)
    channels = {}
    for layer in cost_w.layers:
        if layer.kind == "linear":
            channels[layer.name] = (c, torch.tensor(12.0))
        else:   # convs and the pool
            cin = torch.tensor(1.0) if layer.input_shapes[0][0] == 1 else c
            channels[layer.name] = (cin, c)
    soft = soft_model_cost(hw, cost_w, channels=channels)
    assert soft["macs"].item() == pytest.approx(exact.macs, rel=1e-6)
    assert soft["flash_bytes"].item() == pytest.approx(exact.flash_bytes, rel=1e-6)
    assert soft["latency_ms"].item() == pytest.approx(exact.latency_ms, rel=1e-6)
    assert soft["energy_uj"].item() == pytest.approx(exact.energy_uj, rel=1e-6)
    (soft["latency_ms"] + soft["energy_uj"]).backward()
    assert keep.grad is not None and (keep.grad > 0).all()


def test_bit_gradients_nonzero():
    logits = torch.zeros(3, requires_grad=True)
    choice = BitChoice(torch.softmax(logits, 0), CHOICES)
    r = soft_layer_cost("cortex_m7", macs=conv_macs(16, 32, (3, 3), 64), weights=16 * 32 * 9,
                        act_elements=16 * 64 + 32 * 64, weight_bits=choice)
    assert r["latency_ms"].dim() == 0
    r["flash_bytes"].backward()
    assert logits.grad.abs().sum() > 0
    assert expected_bits(BitChoice(torch.tensor([0.5, 0.5, 0.0]), CHOICES)).item() == 3.0
