"""The shared fx tracer (leaf rule, shapes), channel groups, and the one roofline formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeflow.graph import (
    channel_groups,
    is_quantizer,
    module_of,
    set_submodule,
    shape_of,
    trace,
    trace_with_shapes,
)
from edgeflow.hardware import load
from edgeflow.hardware.differentiable import soft_layer_cost
from edgeflow.hardware.roofline import maximum, roofline
from edgeflow.hardware.schema import PRECISIONS
from edgeflow.methods import pruning as P
from edgeflow.methods.quantization import ActQuantizer, QuantConfig, WeightQuantizer, quantize_model
from edgeflow.methods.quantization.layers import QUANT_LAYER_TYPES
from edgeflow.models import ZOO, build_model

ZOO_SHAPES = {
    "cnn": (1, 8, 8), "resnet8": (3, 32, 32), "dscnn": (1, 49, 10), "mobilenet_v1": (3, 96, 96),
    "tcn": (1, 40), "mlp": (64,), "autoencoder": (640,),
}
STRUCTURAL = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)


def test_zoo_shapes_cover_the_zoo() -> None:
    assert set(ZOO_SHAPES) == set(ZOO)


def _hooked_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str):  # noqa: ANN202
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            shapes[name] = tuple(out.shape)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            shapes[""] = tuple(model(x).shape)
    finally:
        for h in handles:
            h.remove()
    return shapes


@pytest.mark.parametrize("name", sorted(ZOO_SHAPES))
def test_trace_shapes_equal_a_real_forward(name: str) -> None:
    shape = ZOO_SHAPES[name]
    model = build_model(name, shape, 10).eval()
    gm = trace_with_shapes(model, shape)
    real = _hooked_shapes(model, torch.randn(2, *shape))
    calls = [n for n in gm.graph.nodes if n.op == "call_module"]
    assert calls
    for node in calls:
        assert shape_of(node) == real[str(node.target)], node.target
    (out,) = [n for n in gm.graph.nodes if n.op == "output"]
    assert shape_of(out.args[0]) == real[""]
    (inp,) = [n for n in gm.graph.nodes if n.op == "placeholder"]
    assert shape_of(inp) == (2, *shape)
    # every Conv / Linear / BatchNorm is one leaf node, called once
    structural = sorted(n for n, m in model.named_modules() if isinstance(m, STRUCTURAL))
    assert sorted(str(n.target) for n in calls if isinstance(module_of(gm, n), STRUCTURAL)) == structural
    assert gm.training is False and type(gm).__name__ == type(model).__name__


def test_quantized_layers_and_quantizers_are_leaves() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    q = quantize_model(model, (3, 32, 32), QuantConfig())
    gm = trace(q)
    calls = {str(n.target): module_of(gm, n) for n in gm.graph.nodes if n.op == "call_module"}
    standalone = {n for n, m in q.named_children() if isinstance(m, ActQuantizer)}
    assert {n for n, m in calls.items() if is_quantizer(m)} == standalone
    assert standalone == {"input_quant", "quant_add", "quant_add_1", "quant_add_2", "quant_pool"}
    layers = {n for n, m in q.named_modules() if isinstance(m, QUANT_LAYER_TYPES)}
    assert len(layers) == 10 and {n for n, m in calls.items() if isinstance(m, QUANT_LAYER_TYPES)} == layers
    assert not any("quantizer" in t for t in calls)  # never traced into a layer's quantizers


def test_is_quantizer_rule() -> None:
    class Flag(nn.Module):
        bits = True

    assert is_quantizer(ActQuantizer(8)) and is_quantizer(WeightQuantizer(4, 3))
    assert not is_quantizer(nn.ReLU()) and not is_quantizer(Flag())
    conv = nn.Conv2d(1, 2, 1)
    conv.bits = 8
    assert not is_quantizer(conv)


def test_untraceable_forward_names_the_model() -> None:
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="tracing Branchy failed"):
        trace(Branchy())


def test_shape_prop_keeps_the_training_flag() -> None:
    model = build_model("cnn", (1, 8, 8), 10).train()
    trace_with_shapes(model, (1, 8, 8))
    assert all(m.training for m in model.modules())
    model.eval()
    trace_with_shapes(model, (1, 8, 8))
    assert not any(m.training for m in model.modules())


def test_set_submodule_nested_and_top_level() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    set_submodule(model, "stack1.conv1.1", nn.Identity())
    set_submodule(model, "pool", nn.AdaptiveMaxPool2d(1))
    assert isinstance(model.stack1.conv1[1], nn.Identity) and isinstance(model.pool, nn.AdaptiveMaxPool2d)


# ------------------------------------------------------------------------------ channel groups
RESNET8_GROUPS = [
    (16, ["stem.0", "stack1.conv2.0"], ["stem.1", "stack1.conv2.1"],
     [("stack1.conv1.0", 1), ("stack2.conv1.0", 1), ("stack2.shortcut", 1)], None),
    (16, ["stack1.conv1.0"], ["stack1.conv1.1"], [("stack1.conv2.0", 1)], None),
    (32, ["stack2.conv1.0"], ["stack2.conv1.1"], [("stack2.conv2.0", 1)], None),
    (32, ["stack2.conv2.0", "stack2.shortcut"], ["stack2.conv2.1"],
     [("stack3.conv1.0", 1), ("stack3.shortcut", 1)], None),
    (64, ["stack3.conv1.0"], ["stack3.conv1.1"], [("stack3.conv2.0", 1)], None),
    (64, ["stack3.conv2.0", "stack3.shortcut"], ["stack3.conv2.1"], [("classifier", 1)], None),
    (10, ["classifier"], [], [], "model output"),
]


def _rows(groups: list) -> list[tuple]:
    return [(g.channels, g.producers, g.bns, g.consumers, g.blocked) for g in groups]


def test_resnet8_groups_tie_residual_adds() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    groups = channel_groups(model, (3, 32, 32))
    assert _rows(groups) == RESNET8_GROUPS
    assert all(g.depthwise == [] for g in groups)
    assert _rows(P.channel_groups(model, (3, 32, 32))) == RESNET8_GROUPS  # the pruning API is this one
    thin, _ = P.structured_prune(model, (3, 32, 32), 0.5)
    # both sides of every residual add keep the same width
    assert thin.stem[0].out_channels == thin.stack1.conv2[0].out_channels == 8
    assert thin.stack2.conv2[0].out_channels == thin.stack2.shortcut.out_channels == 16
    assert thin.stack3.conv2[0].out_channels == thin.stack3.shortcut.out_channels == 32


def test_exclude_predicate_and_pruning_globs() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    by_name = {g.name: g for g in channel_groups(model, (3, 32, 32), exclude=lambda n: n == "stack2.shortcut")}
    assert by_name["stack2.conv2.0"].blocked == "excluded: stack2.shortcut"
    assert [g.name for g in by_name.values() if g.blocked] == ["stack2.conv2.0", "classifier"]
    blocked = [g.name for g in P.channel_groups(model, (3, 32, 32), exclude=["stack1"]) if g.blocked]
    assert blocked == ["stem.0", "stack1.conv1.0", "classifier"]


# ------------------------------------------------------------------------------ one cost formula
def _tiny() -> object:
    return load(dict(name="tiny", clock_hz=1e6, flash_bytes=1000, ram_bytes=500,
                     mac_per_cycle={p: 2.0 for p in PRECISIONS}, energy_per_mac_pj={p: 10.0 for p in PRECISIONS},
                     bytes_per_cycle={"flash": 1.0, "sram": 4.0}, energy_per_byte_pj={"flash": 2.0, "sram": 1.0},
                     layer_overhead_cycles=100))


@pytest.mark.parametrize(("work", "wbytes", "abytes", "cycles", "bound"), [
    (1000, 300, 400, 600.0, "compute"),   # compute 1000/2 = 500; memory 300/1 + 400/4 = 400; + 100
    (100, 3000, 0, 3100.0, "memory"),     # compute 50; memory 3000
])
def test_roofline_hand_computed_on_floats_and_tensors(work, wbytes, abytes, cycles, bound) -> None:
    hw = _tiny()
    energy = (work * 10 + wbytes * 2 + abytes * 1) * 1e-6
    r = roofline(hw.cfg, "int8", float(work), wbytes, abytes)
    assert type(r.cycles) is float and r.cycles == cycles and r.latency_ms == cycles / 1e3
    assert r.energy_uj == pytest.approx(energy, rel=1e-15)
    le = hw.estimate_layer(work, wbytes, abytes, bits=8)
    assert (le.cycles, le.latency_ms, le.energy_uj, le.bound) == (r.cycles, r.latency_ms, r.energy_uj, bound)
    t = lambda v: torch.tensor(float(v), dtype=torch.float64, requires_grad=True)  # noqa: E731
    tw, twb, tab = t(work), t(wbytes), t(abytes)
    rt = roofline(hw.cfg, "int8", tw, twb, tab)
    assert rt.cycles.item() == r.cycles and rt.latency_ms.item() == r.latency_ms
    assert rt.energy_uj.item() == r.energy_uj
    rt.latency_ms.backward()
    # d latency / d input = (1/roof) / clock · 1e3 on the binding roof, 0 on the other
    grads = (tw.grad.item(), twb.grad.item(), tab.grad.item())
    assert grads == pytest.approx((5e-4, 0, 0) if bound == "compute" else (0, 1e-3, 2.5e-4))
    soft = soft_layer_cost(hw, macs=work, weights=wbytes, act_elements=abytes, weight_bits=8)
    assert soft["latency_ms"].item() == r.latency_ms and soft["energy_uj"].item() == pytest.approx(energy, rel=1e-15)


def test_maximum_picks_by_type() -> None:
    assert maximum(2, 3.5) == 3.5 and type(maximum(2, 3.5)) is float
    m = maximum(torch.tensor(1.0, dtype=torch.float64), 2.0)
    assert isinstance(m, torch.Tensor) and m.item() == 2.0 and m.dtype == torch.float64
