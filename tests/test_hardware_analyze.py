"""Graph analysis: MLPerf Tiny references, an independent counter, hand-computed layers."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeflow.hardware import analyze
from edgeflow.models import build_model

# (model, input shape, classes, MACs, weights, biases) from REFERENCE.md §2 (MLPerf Tiny v1.1 int8 tflite)
MLPERF = [
    ("resnet8", (3, 32, 32), 10, 12.50e6, 77_360, 348),
    ("dscnn", (1, 49, 10), 12, 2.66e6, 22_016, 590),
    ("mobilenet_v1", (3, 96, 96), 2, 7.49e6, 208_112, 2_740),
    ("autoencoder", (640,), 640, 0.264e6, 264_192, 1_672),
]
ZOO = [(n, s, c) for n, s, c, *_ in MLPERF] + [("mlp", (1, 28, 28), 10), ("cnn", (1, 28, 28), 10),
                                              ("tcn", (1, 40), 10)]


@pytest.mark.parametrize("name,shape,classes,macs,weights,biases", MLPERF)
def test_zoo_reproduces_mlperf_tiny(name, shape, classes, macs, weights, biases):
    cost = analyze(build_model(name, shape, classes), shape)
    assert abs(cost.macs - macs) / macs <= 0.01
    assert cost.weights == weights
    # biases after BN folding; the tflite files also count a Reshape's int32 shape tensor (2 values)
    # as a "bias" for resnet8, dscnn and mobilenet_v1, hence up to -2 here
    assert 0 <= biases - cost.biases <= 2
    assert abs(cost.params - (weights + biases)) / (weights + biases) <= 0.01


def test_resnet8_peak_activation_matches_mlperf_arena():
    cost = analyze(build_model("resnet8", (3, 32, 32), 10), (3, 32, 32), default_bits=8)
    assert cost.peak_activation_bytes == 48 * 1024   # REFERENCE.md §2: 48.0 KiB greedy arena


@pytest.mark.parametrize("name,shape,classes", ZOO)
def test_agrees_with_ptflops(name, shape, classes):
    ptflops = pytest.importorskip("ptflops")
    model = build_model(name, shape, classes)
    ignore = [nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
              nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity]
    macs, params = ptflops.get_model_complexity_info(
        model, tuple(shape), as_strings=False, print_per_layer_stat=False, backend="pytorch",
        ignore_modules=ignore, backend_specific_config={"count_functional": False})
    cost = analyze(model, shape)
    # ptflops adds one MAC per output element for a Conv/Linear bias; MLPerf convention does not
    bias_adds = sum(math.prod(layer.output_shape) for layer in cost.layers
                    if layer.kind in ("conv1d", "conv2d", "dwconv1d", "dwconv2d", "linear")
                    and layer.attrs["bias"])
    assert macs == cost.macs + bias_adds
    assert params == cost.torch_params == sum(p.numel() for p in model.parameters())


def test_depthwise_conv_hand_computed():
    m = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    cost = analyze(m, (8, 10, 10))
    assert len(cost.layers) == 1
    layer = cost.layers[0]
    assert layer.kind == "dwconv2d" and layer.output_shape == (8, 5, 5)
    assert layer.macs == 8 * 5 * 5 * 1 * 9 == 1800
    assert (layer.weights, layer.biases) == (72, 8)    # BN folded into a bias
    assert layer.fused == ["1", "2"]
    assert layer.input_bytes == 800 * 4 and layer.output_bytes == 200 * 4


def test_dilated_conv1d_hand_computed():
    cost = analyze(nn.Conv1d(4, 6, 3, dilation=2), (4, 20))
    layer = cost.layers[0]
    assert layer.kind == "conv1d" and layer.output_shape == (6, 16)   # 20 - 2*(3-1)
    assert layer.macs == 6 * 16 * 4 * 3 == 1152
    assert (layer.weights, layer.biases) == (72, 6)


def test_grouped_conv_hand_computed():
    cost = analyze(nn.Conv2d(8, 16, 3, padding=1, groups=2), (8, 6, 6))
    layer = cost.layers[0]
    assert layer.kind == "conv2d" and layer.attrs["groups"] == 2
    assert layer.macs == 16 * 36 * 4 * 9 == 20736
    assert layer.weights == 16 * 4 * 9


class UserNet(nn.Module):
    """Unregistered model: functional conv on a raw Parameter, residual add, concat, pools, mean."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.conv = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        a = F.relu(F.conv2d(x, self.w, padding=1))
        b = self.conv(a)
        if b.shape[-1] > 2:   # Python control flow is fine
            b = a + b
        c = torch.cat([a, b], dim=1)
        c = F.max_pool2d(c, 2)
        return self.fc(c.mean((2, 3)))


def test_unregistered_user_model_with_functional_ops():
    cost = analyze(UserNet(), (3, 8, 8))
    kinds = [layer.kind for layer in cost.layers]
    assert kinds == ["conv2d", "conv2d", "add", "concat", "maxpool", "avgpool", "linear"]
    assert cost.layers[0].macs == 4 * 64 * 3 * 9 and cost.layers[0].fused == ["relu"]
    assert cost.layers[2].inputs == [0, 1] and cost.layers[2].ops == 256
    assert cost.layers[3].output_shape == (8, 8, 8) and cost.layers[3].inputs == [0, 2]
    assert cost.layers[4].ops == 8 * 16 * 4
    assert cost.macs == 4 * 64 * 27 + 4 * 64 * 4 + 8 * 5
    assert cost.torch_params == sum(p.numel() for p in UserNet().parameters())


class _Quant(nn.Module):
    def __init__(self, bits):
        super().__init__()
        self.bits = bits

    def forward(self, x):
        return x


class QConv(nn.Conv2d):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.weight_quantizer = _Quant(4)
        self.act_quantizer = _Quant(8)


def test_quantized_and_masked_layer():
    conv = QConv(4, 8, 3, bias=False)
    mask = torch.ones_like(conv.weight)
    mask[:4] = 0
    conv.register_buffer("weight_mask", mask)
    cost = analyze(nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 3)), (4, 6, 6))
    q = cost.layers[0]
    assert (q.weight_bits, q.act_bits) == (4, 8)
    assert q.weight_bytes == 8 * 4 * 9 // 2
    assert q.sparsity == pytest.approx(0.5)
    assert q.input_bytes == 4 * 36 and q.output_bytes == 8 * 16
    lin = cost.layers[1]
    assert lin.weight_bits == 32 and lin.act_bits == 8   # float weights, input carries 8-bit activations
    assert lin.input_bytes == 128


def test_default_bits_and_standalone_ops():
    m = nn.Sequential(nn.BatchNorm1d(10), nn.Sigmoid(), nn.Linear(10, 4))
    cost = analyze(m, (10,), default_bits=8)
    assert [layer.kind for layer in cost.layers] == ["batchnorm", "activation", "linear"]
    assert cost.macs == 40 and cost.ops == 20
    assert cost.layers[2].weight_bytes == 40 and cost.layers[2].bias_bytes == 16


def test_training_mode_restored():
    m = build_model("cnn", (1, 28, 28), 10)
    m.train()
    analyze(m, (1, 28, 28))
    assert m.training


def test_quantized_layers_count_their_integer_zero_codes_as_zeros() -> None:
    """analyze reads a quantized layer's deployed weight: weights that round to code 0 are zeros,
    as in the exported int8 file (the float weight would count them as non-zero)."""
    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quant_layers, quantize_model

    torch.manual_seed(0)
    model = quantize_model(build_model("tcn", (1, 40), 10), (1, 40), QuantConfig(weight_bits=4))
    calibrate(model, [(torch.randn(16, 1, 40), None)], 1)
    freeze_observers(model)
    cost = analyze(model, (1, 40))
    by_name = {layer.name: layer for layer in cost.layers}
    checked = 0
    for name, layer in quant_layers(model).items():
        codes, _ = layer.weight_quantizer.quantize_int(layer.weight.detach(), None)
        zeros = int((codes == 0).sum())
        assert round(by_name[name].sparsity * codes.numel()) == zeros, name
        checked += zeros > 0
    assert checked >= 3  # at 4 bits most layers have weights that round to 0
