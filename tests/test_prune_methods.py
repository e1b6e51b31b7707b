"""Pruning methods in plain PyTorch: schedules, magnitude masks, N:M, structured thinning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeflow.core.errors import ConfigError
from edgeflow.methods import pruning as P
from edgeflow.methods.pruning.schedules import SparsitySchedule
from edgeflow.models import build_model

torch.manual_seed(0)

ZOO_SHAPES = {
    "cnn": (1, 8, 8), "resnet8": (3, 32, 32), "dscnn": (1, 49, 10), "mobilenet_v1": (3, 96, 96),
    "tcn": (1, 40), "mlp": (64,), "autoencoder": (640,),
}


# ------------------------------------------------------------------------------ schedules
def test_agp_values_at_hand_computed_steps() -> None:
    s = SparsitySchedule("agp", final=0.8, initial=0.0, begin=0, end=4, frequency=1, unit="epoch")
    # s_t = 0.8 + (0 - 0.8)(1 - t/4)^3
    assert s.events() == [0, 1, 2, 3, 4]
    assert [round(v, 6) for _, v in s.table()] == [0.0, 0.4625, 0.7, 0.7875, 0.8]
    assert s.sparsity(100) == pytest.approx(0.8)


def test_other_schedules_and_frequency() -> None:
    lin = SparsitySchedule("linear", final=0.6, initial=0.2, begin=2, end=6, frequency=2, unit="step")
    assert lin.events() == [2, 4, 6]
    assert lin.sparsity(1) == 0.0  # before begin nothing is pruned
    assert lin.sparsity(3) == pytest.approx(0.2)  # held since the event at 2
    assert lin.sparsity(4) == pytest.approx(0.4)
    assert lin.target_at(5) is None and lin.target_at(6) == pytest.approx(0.6)
    odd = SparsitySchedule("linear", final=0.5, begin=1, end=6, frequency=2)
    assert odd.events() == [1, 3, 5, 6]  # end always included
    exp = SparsitySchedule("exponential", final=0.75, begin=0, end=2)
    assert exp.target_at(1) == pytest.approx(0.5)  # density 1 -> 0.5 -> 0.25
    poly = SparsitySchedule("polynomial", final=0.9, begin=0, end=2, exponent=1.0)
    assert poly.target_at(1) == pytest.approx(0.45)
    const = SparsitySchedule("constant", final=0.7, begin=3, end=3)
    assert const.table() == [(3, 0.7)]
    assert P.cycle_sparsities(0.875, 3) == pytest.approx([0.5, 0.75, 0.875])


def test_schedule_that_prunes_nothing_is_an_error() -> None:
    s = SparsitySchedule("agp", final=0.8, begin=10, end=20, unit="step")
    with pytest.raises(ConfigError, match="would prune nothing") as e:
        s.check(8)  # only 8 optimizer steps: begin=10 never happens
    assert e.value.key == "begin"
    with pytest.raises(ConfigError, match="would not reach") as e:
        s.check(15)
    assert e.value.key == "end"
    s.check(21)
    with pytest.raises(ConfigError, match="target_sparsity"):
        SparsitySchedule("agp", final=0.0, end=3)
    with pytest.raises(ConfigError, match="frequency"):
        SparsitySchedule("agp", final=0.5, end=3, frequency=0)


def test_stage_config_rejects_schedule_beyond_the_fit() -> None:
    from edgeflow.stages.prune import Config

    with pytest.raises(ConfigError, match="end") as e:
        Config(kind="prune", max_epochs=5, end=5)
    assert e.value.key == "end"
    with pytest.raises(ConfigError) as e:
        Config(kind="prune", method="structured", unit="epoch")
    assert e.value.key == "unit"
    with pytest.raises(ConfigError) as e:
        Config(kind="prune", rewind="init")
    assert e.value.key == "rewind"
    Config(kind="prune", max_epochs=6, end=5)


# ------------------------------------------------------------------------------ magnitude
def test_layer_magnitude_prunes_exact_counts_and_smallest_weights() -> None:
    model = build_model("cnn", (1, 8, 8), 10)
    before = {n: m.weight.detach().abs().clone() for n, m in P.prunable_layers(model).items()}
    P.magnitude_prune(model, 0.6, scope="layer", exclude=["classifier"])
    for name, m in P.prunable_layers(model).items():
        if name == "classifier":  # excluded by pattern: no mask, dense
            assert P.MASK not in m._buffers and (m.weight != 0).all()
            continue
        mask = P.get_mask(m)
        assert int((mask == 0).sum()) == round(0.6 * m.weight.numel())
        assert (m.weight[mask == 0] == 0).all()
        assert before[name][mask > 0].min() >= before[name][mask == 0].max()


def test_global_magnitude_one_threshold_and_monotone() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    before = {n: m.weight.detach().abs().clone() for n, m in P.prunable_layers(model).items()}
    P.magnitude_prune(model, 0.7, scope="global")
    rep = P.sparsity_report(model)
    assert rep["total"]["zeros"] == round(0.7 * rep["total"]["params"])
    kept = torch.cat([before[n][P.get_mask(m) > 0] for n, m in P.prunable_layers(model).items()])
    pruned = torch.cat([before[n][P.get_mask(m) == 0] for n, m in P.prunable_layers(model).items()])
    assert kept.min() >= pruned.max()  # a single global |w| threshold
    masks = {n: P.get_mask(m).clone() for n, m in P.prunable_layers(model).items()}
    P.magnitude_prune(model, 0.5, scope="global")  # lower target: nothing is revived
    for n, m in P.prunable_layers(model).items():
        assert torch.equal(P.get_mask(m), masks[n])


def test_rewind_restores_surviving_weights_only() -> None:
    model = build_model("mlp", (64,), 10)
    snap = P.snapshot(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    P.magnitude_prune(model, 0.5)
    P.rewind(model, snap)
    for n, m in P.prunable_layers(model).items():
        mask = P.get_mask(m)
        assert torch.equal(m.weight[mask > 0], snap[f"{n}.weight"][mask > 0])
        assert (m.weight[mask == 0] == 0).all()


# ------------------------------------------------------------------------------ N:M
@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 8)])
def test_nm_masks_satisfy_the_pattern_in_every_group(n: int, m: int) -> None:
    model = build_model("dscnn", (1, 49, 10), 12)
    P.nm_prune(model, n, m)
    for name, mod in P.prunable_layers(model).items():
        mask = P.get_mask(mod)
        rows = P.nm._to_rows(mask)  # channels-last reduction order
        k = rows.shape[1]
        full = (k // m) * m
        if full:
            per_group = rows[:, :full].reshape(rows.shape[0], -1, m).sum(-1)
            assert (per_group == n).all(), name  # exactly n kept in every full group
        if k > full:
            assert (rows[:, full:].sum(-1) == min(n, k - full)).all()
        assert P.check_nm(mod.weight, n, m)
        assert (mod.weight[mask == 0] == 0).all()


def test_nm_groups_run_along_input_channels() -> None:
    conv = nn.Conv2d(8, 2, 3)
    mask = P.nm_mask(conv.weight, 2, 4)
    # for every output channel and kernel tap, input channels 0-3 and 4-7 each keep exactly 2
    assert (mask.reshape(2, 2, 4, 3, 3).sum(2) == 2).all()


# ------------------------------------------------------------------------------ energy-aware
def test_energy_aware_rule() -> None:
    costs = {"a": 10.0, "b": 1.0, "c": 5.0, "d": 0.0}
    sizes = {"a": 100, "b": 300, "c": 100, "d": 50}
    s = P.energy_aware_sparsities(costs, sizes, 0.4, max_layer=0.9)
    total = sum(sizes.values())
    assert sum(sizes[k] * s[k] for k in s) / total == pytest.approx(0.4, abs=1e-6)
    assert s["a"] >= s["c"] >= s["b"] >= s["d"] == 0.0
    assert max(s.values()) <= 0.9 + 1e-9
    assert s["c"] / s["b"] == pytest.approx(5.0)  # proportional to cost below the cap
    with pytest.raises(ValueError, match="unreachable"):
        P.energy_aware_sparsities(costs, sizes, 0.95, max_layer=0.9)


# ------------------------------------------------------------------------------ structured
def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


@pytest.mark.parametrize("name", list(ZOO_SHAPES))
def test_thinning_zeroed_channels_keeps_outputs_identical(name: str) -> None:
    shape = ZOO_SHAPES[name]
    model = build_model(name, shape, 10).eval()
    _randomize_bn(model)
    groups = P.channel_groups(model, shape)
    assert any(g.prunable for g in groups)
    keep = P.select_channels(model, groups, 0.5)
    P.zero_channels(model, groups, keep)
    thin = P.thin(model, groups, keep).eval()
    x = torch.randn(4, *shape)
    with torch.no_grad():
        assert torch.allclose(model(x), thin(x), atol=1e-5, rtol=1e-4)
    n0 = sum(p.numel() for p in model.parameters())
    n1 = sum(p.numel() for p in thin.parameters())
    assert n1 < 0.6 * n0, (n0, n1)


def test_resnet8_residual_adds_tie_channels() -> None:
    model = build_model("resnet8", (3, 32, 32), 10)
    groups = {g.name: g for g in P.channel_groups(model, (3, 32, 32))}
    tied = [g for g in groups.values() if len(g.producers) == 2]
    assert len(tied) == 3  # stem + block-1 output; block-2/3 output + their 1x1 shortcuts
    assert all(g.prunable for g in tied)
    assert groups["classifier"].blocked == "model output"
    thin, report = P.structured_prune(model, (3, 32, 32), 0.5)
    thin(torch.randn(2, 3, 32, 32))
    assert all(r["kept"] == r["channels"] // 2 for r in report if not r["blocked"])


def test_dependencies_follow_depthwise_and_flatten() -> None:
    model = build_model("mobilenet_v1", (3, 96, 96), 2)
    groups = P.channel_groups(model, (3, 96, 96))
    assert sum(len(g.depthwise) for g in groups) == 13
    thin, _ = P.structured_prune(model, (3, 96, 96), 0.5)
    dws = [m for m in thin.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert all(m.groups == m.in_channels == m.out_channels for m in dws)

    class Flat(nn.Module):  # conv -> flatten -> linear: channel c owns features [c*f, (c+1)*f)
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    net = Flat().eval()
    (g,) = [g for g in P.channel_groups(net, (1, 4, 4)) if g.name == "conv"]
    assert g.consumers == [("fc", 16)]
    keep = {"conv": torch.tensor([1, 4, 6])}
    P.zero_channels(net, [g], keep)
    thin = P.thin(net, [g], keep)
    assert thin.fc.in_features == 48
    x = torch.randn(3, 1, 4, 4)
    assert torch.allclose(net(x), thin(x), atol=1e-6)


def test_concat_and_exclude_block_groups() -> None:
    class Cat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 4, 1)
            self.b = nn.Conv2d(1, 4, 1)
            self.c = nn.Conv2d(8, 4, 1)
            self.d = nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.d(self.c(torch.cat([self.a(x), self.b(x)], 1)))

    groups = {g.name: g for g in P.channel_groups(Cat(), (1, 4, 4), exclude=["c"])}
    assert not groups["a"].prunable and not groups["b"].prunable
    assert groups["c"].blocked == "excluded: c"


def test_thinned_onnx_export_is_smaller(tmp_path: Path) -> None:
    from edgeflow.export import export_float
    from edgeflow.hardware import analyze

    shape = (1, 8, 8)
    model = build_model("cnn", shape, 10).eval()
    thin, _ = P.structured_prune(model, shape, 0.5)
    sizes = []
    for m, f in ((model, "dense.onnx"), (thin, "thin.onnx")):
        proto = onnx.load(str(export_float(m.eval(), shape, tmp_path / f)))
        sizes.append(sum(int(np.prod(t.dims)) for t in proto.graph.initializer))
    assert sizes[1] <= 0.6 * sizes[0]
    assert analyze(thin, shape).macs <= 0.6 * analyze(model, shape).macs


def test_bn_scale_criterion_and_penalty() -> None:
    model = build_model("cnn", (1, 8, 8), 10)
    bn = model.features[0][1]
    with torch.no_grad():
        bn.weight.copy_(torch.arange(16, dtype=torch.float32))
    groups = P.channel_groups(model, (1, 8, 8))
    keep = P.select_channels(model, groups, 0.25, criterion="bn_scale")
    assert keep["features.0.0"].tolist() == list(range(4, 16))
    loss = P.bn_l1_penalty(model, 0.1)(model)
    assert loss.item() == pytest.approx(0.1 * sum(m.weight.abs().sum().item() for m in model.modules()
                                                  if isinstance(m, nn.BatchNorm2d)))
    loss.backward()
    assert bn.weight.grad is not None


def test_storage_table_reports_formats() -> None:
    model = build_model("mlp", (64,), 10)
    P.nm_prune(model, 1, 4)
    rows = P.storage_table(model, supported=("dense", "csr", "nm"))
    for r in rows:
        assert r["nm_n"] == 1 and r["nm_m"] == 4
        assert r["dense_bytes"] == r["params"] * 4
        assert r["best_format"] in ("csr", "nm") and r["best_bytes"] < r["dense_bytes"]
