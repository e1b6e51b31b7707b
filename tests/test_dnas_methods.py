"""DNAS methods without the pipeline: the exported PIT model equals the masked supernet on every zoo
model, the soft cost of the architecture the masks / bit choices / choice blocks select equals
``analyze`` + estimate of the exported model, and the exports replay from their blueprint exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgeflow.hardware import analyze, load
from edgeflow.methods.dnas import PIT, ChoiceSupernet, MixedPrecision
from edgeflow.models import build_model
from edgeflow.state import State

ZOO = [("tcn", (1, 40)), ("cnn", (1, 8, 8)), ("resnet8", (3, 32, 32)), ("dscnn", (1, 49, 10)),
       ("mobilenet_v1", (3, 32, 32)), ("mlp", (1, 8, 8)), ("autoencoder", (1, 8, 8))]
HW = load("cortex_m4")


def _randomise(net: torch.nn.Module, seed: int) -> None:
    """Masks between keep and drop, BatchNorms with non-trivial statistics and affine terms."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.rand(p.shape, generator=g) * (1.0 if p.numel() > 2 else 0.6))
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1, generator=g)
                m.running_var.uniform_(0.5, 2, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-1, 1, generator=g)


def _relative_gap(soft: dict, model: torch.nn.Module, shape: tuple, bits: int = 32) -> float:
    cost = analyze(model, shape, bits)
    est = HW.estimate(cost, warn=False)
    exact = {"latency_ms": est.latency_ms, "energy_uj": est.energy_uj, "flash_bytes": est.flash_bytes,
             "macs": cost.macs, "params": cost.params}
    return max(abs(float(soft[k]) - v) / abs(v) for k, v in exact.items())


@pytest.mark.parametrize("name,shape", ZOO, ids=[n for n, _ in ZOO])
def test_pit_export_equals_masked_supernet_and_its_cost(name: str, shape: tuple) -> None:
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    net = PIT(model, shape, search_kernel=name == "tcn", search_dilation=name == "tcn")
    assert net.groups, name                                      # every zoo model has a prunable group
    _randomise(net, 1)
    net.eval()
    thin = net.export().eval()
    x = torch.randn(8, *shape)
    with torch.no_grad():
        assert (net(x) - thin(x)).abs().max() <= 1e-5
        assert _relative_gap(net.soft_cost(HW), thin, shape, bits=8) <= 1e-5
    assert analyze(thin, shape).params < analyze(model, shape).params   # really thinner
    if name == "tcn":  # kernels and dilations changed too, as the architecture table says
        rows = {r["layer"]: r for r in net.architecture()}
        for layer, row in rows.items():
            if "kernel" in row:
                conv = thin.get_submodule(layer)
                assert (conv.kernel_size[0], conv.dilation[0], conv.out_channels) == (
                    row["kernel"], row["dilation"], row["channels"])
        assert any(r["kernel"] < r["kernel_before"] for r in rows.values() if "kernel" in r)


def test_pit_export_reloads_from_its_blueprint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("tcn", (1, 40), 10)
    from edgeflow.models.blueprint import set_blueprint

    set_blueprint(model, [{"op": "zoo", "name": "tcn", "input_shape": [1, 40], "num_classes": 10, "options": {}}])
    net = PIT(model, (1, 40), search_kernel=True, search_dilation=True)
    _randomise(net, 2)
    thin = net.export().eval()
    State.of(thin, (1, 40), 10).save(tmp_path / "state")
    loaded = State.load(tmp_path / "state").model.eval()
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        assert torch.equal(loaded(x), thin(x))


@pytest.mark.parametrize("name,shape", [("cnn", (1, 8, 8)), ("tcn", (1, 40))])
def test_mixed_precision_cost_equals_the_exported_model(name: str, shape: tuple) -> None:
    torch.manual_seed(0)
    net = MixedPrecision(build_model(name, shape, 10), shape, weight_bits=(2, 4, 8), act_bits=(4, 8))
    net.calibrate([torch.randn(16, *shape) for _ in range(2)], 2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.arch_parameters():                         # one-hot: exp(-1e4) is exactly 0
            p.copy_(torch.where(torch.arange(p.numel()) == torch.randint(p.numel(), (), generator=g), 0.0, -1e4))
    net.eval()
    exported = net.export().eval()
    chosen = {r["layer"]: (r["weight_bits"], r["act_bits"]) for r in net.architecture()}
    from edgeflow.methods.quantization import quant_layers

    got = {n: (m.weight_quantizer.bits, m.act_quantizer.bits) for n, m in quant_layers(exported).items()}
    assert got == chosen and len(set(chosen.values())) > 1                # a mixed model
    x = torch.randn(8, *shape)
    with torch.no_grad():
        assert (net(x) - exported(x)).abs().max() <= 1e-5
        assert _relative_gap(net.soft_cost(HW), exported, shape) <= 1e-5


@pytest.mark.parametrize("name,shape", [("tcn", (1, 40)), ("dscnn", (1, 49, 10))])
def test_choice_supernet_export_cost_and_blueprint(name: str, shape: tuple) -> None:
    from edgeflow.models.blueprint import blueprint_of, rebuild, set_blueprint

    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    set_blueprint(model, [{"op": "zoo", "name": name, "input_shape": list(shape), "num_classes": 10, "options": {}}])
    net = ChoiceSupernet(model, shape, kernel_sizes=(3, 5, 7), identity=True, sampling="gumbel")
    assert len(net.blocks) == 4 and all("identity" in r["probs"] for r in net.architecture()[1:])
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():                                        # one-hot choices, identity among them
        for p in net.arch_parameters():
            p.copy_(torch.where(torch.arange(p.numel()) == torch.randint(p.numel(), (), generator=g), 0.0, -1e4))
    choices = [r["choice"] for r in net.architecture()]
    assert "identity" in choices and len(set(choices)) >= 3, choices
    net.eval()
    exported = net.export().eval()
    x = torch.randn(4, *shape)
    rebuilt = rebuild(blueprint_of(exported))
    rebuilt.load_state_dict(exported.state_dict())
    with torch.no_grad():
        assert torch.equal(net(x), exported(x)) and torch.equal(rebuilt.eval()(x), exported(x))
        assert _relative_gap(net.soft_cost(HW), exported, shape, bits=8) <= 1e-5


def test_regulariser_penalises_only_above_targets_and_ramps() -> None:
    from edgeflow.methods.dnas import Regularizer

    reg = Regularizer(cost="params", strength=0.5, targets={"latency_ms": 2.0, "flash_bytes": 1000.0},
                      target_strength=4.0, ramp_epochs=4, reference={"params": 100.0})
    costs = {"params": torch.tensor(50.0, dtype=torch.float64), "latency_ms": torch.tensor(3.0, dtype=torch.float64),
             "flash_bytes": torch.tensor(800.0, dtype=torch.float64)}
    # 0.5 · 50/100 + ramp · 4 · max(0, 3/2 − 1) + 0 (flash below its target)
    assert [float(reg.loss(costs, e)) for e in range(5)] == [0.25 + r * 2.0 for r in (0.25, 0.5, 0.75, 1.0, 1.0)]
    with pytest.raises(ValueError, match="unknown cost 'peak_ram_bytes'"):
        Regularizer(targets={"peak_ram_bytes": 1.0})


def test_pit_from_the_wide_dilation_1_seed_exports_dilated_convs_that_reload(tmp_path: Path) -> None:
    """recipe=dnas_pit_tcn_wide's seed (dilation 1, kernels 5/9/17/33): masks chosen per layer export to
    the kernels / dilations they select (here k5d1, k3d4, k5d4, k3d16), equal to the masked supernet, at
    the soft cost, and the saved state reloads them."""
    torch.manual_seed(0)
    opts = {"channels": (8, 8, 8, 8), "kernel_sizes": (5, 9, 17, 33), "dilations": (1, 1, 1, 1)}
    model = build_model("tcn", (1, 40), 10, **opts)
    net = PIT(model, (1, 40), search_kernel=True, search_dilation=True, min_channels=2)
    masks = [net.tap_masks[f"t{i}"] for i in range(4)]
    with torch.no_grad():
        for m, (radius, level) in zip(masks, [(2, 0), (4, 2), (8, 2), (16, 4)]):
            m.beta.copy_(torch.where(torch.arange(1, m.radius + 1) == radius, 1.0, 0.0))   # keep radius 1..r
            if m.gamma is not None:                                 # drop offsets not divisible by 2^level
                m.gamma.copy_(torch.where(torch.arange(1, m.levels + 1) == level + 1, 1.0, 0.0))
        net.channel_masks[0].theta.copy_(torch.tensor([1.0, 0.2, 1.0, 0.1, 1.0, 1.0, 0.3, 1.0]))
    net.eval()
    thin = net.export().eval()
    got = [(c.kernel_size[0], c.dilation[0], c.out_channels) for c in (thin.features[i][0] for i in range(4))]
    assert got == [(5, 1, 5), (3, 4, 8), (5, 4, 8), (3, 16, 8)]
    x = torch.randn(4, 1, 40)
    State.of(thin, (1, 40), 10).save(tmp_path / "state")
    loaded = State.load(tmp_path / "state").model.eval()
    with torch.no_grad():
        assert (net(x) - thin(x)).abs().max() <= 1e-5 and torch.equal(loaded(x), thin(x))
    assert _relative_gap(net.soft_cost(HW), thin, (1, 40), bits=8) <= 1e-5
