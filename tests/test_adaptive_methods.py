"""Adaptive methods on exact values: confidence measures, the expected-cost arithmetic, the threshold
rules (unsatisfiable ones included), the policy of a big/little module against the numpy routing,
early-exit cutting of zoo models, and systems surviving State.save / State.load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeflow.methods.adaptive import BigLittle, EarlyExit, choose, confidence, exit_points, expected_cost, resolve_exit
from edgeflow.methods.adaptive.calibrate import evaluate_point, served_path, sweep
from edgeflow.methods.adaptive.system import blueprint_step
from edgeflow.models import build_model
from edgeflow.models.blueprint import blueprint_of, set_blueprint
from edgeflow.state import State


def test_confidence_measures_on_known_probabilities() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    logits = torch.log(p)
    assert torch.allclose(confidence(logits, "max_prob"), torch.tensor([0.7, 1 / 3]))
    assert torch.allclose(confidence(logits, "score_margin"), torch.tensor([0.5, 0.0]), atol=1e-6)
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert torch.allclose(confidence(logits, "entropy"), torch.tensor([1 - h / math.log(3), 0.0]), atol=1e-6)


def test_expected_cost_shares_and_rules_by_hand() -> None:
    # 4 samples, 2 paths; little is confident (0.9) on samples 0, 1, unsure (0.2) on 2, 3
    conf = np.array([[0.9, 0.9, 0.2, 0.2], [1.0, 1.0, 1.0, 1.0]])
    pred = np.array([[0, 1, 0, 0], [0, 1, 2, 3]])
    y = np.array([0, 1, 2, 3])
    costs = {"energy_uj": [2.0, 10.0], "latency_ms": [1.0, 4.0]}
    ref = {"energy_uj": 10.0, "latency_ms": 4.0}
    assert served_path(conf, 0.5).tolist() == [0, 0, 1, 1]
    p = evaluate_point(0.5, conf, pred, y, costs, ref)
    assert p.shares == (0.5, 0.5) and p.acc == 100.0
    assert p.expected["energy_uj"] == 0.5 * 2 + 0.5 * 12 == expected_cost([0.5, 0.5], [2.0, 10.0])   # 7 µJ
    assert p.ratio["energy_uj"] == 0.7 and p.ratio["latency_ms"] == (0.5 * 1 + 0.5 * 5) / 4
    low = evaluate_point(0.1, conf, pred, y, costs, ref)          # little serves all: 2 of 4 right
    assert low.shares == (1.0, 0.0) and low.acc == 50.0 and low.expected["energy_uj"] == 2.0
    curve = sweep(conf, pred, y, costs, ref, [0.1, 0.5, 1.0])
    assert [c.acc for c in curve] == [50.0, 100.0, 100.0] and curve[-1].expected["energy_uj"] == 12.0
    best = choose(curve, {"min_cost_at_drop": 0.5}, reference_acc=100.0)
    assert best.met and best.point.theta == 0.5
    assert choose(curve, {"min_cost_at_drop": 60}, 100.0).point.theta == 0.1           # any drop: cheapest
    under = choose(curve, {"max_acc_under": {"energy_uj": 7.0}}, 100.0)
    assert under.met and under.point.theta == 0.5
    never = choose(curve, {"max_acc_under": {"energy_uj": 1.0}}, 100.0)                 # below the little's cost
    assert not never.met and never.point.theta == 0.1 and "unreachable" in never.message and "\n" not in never.message
    missed = choose(curve, {"min_cost_at_drop": 0.0}, reference_acc=101.0)
    assert not missed.met and missed.point.acc == 100.0 and "best reachable is 100.00 %" in missed.message


def _big_little(seed: int = 0) -> BigLittle:
    torch.manual_seed(seed)
    little = build_model("mlp", (1, 8, 8), 10, hidden=[8])
    big = build_model("cnn", (1, 8, 8), 10, channels=[4, 8])
    system = BigLittle([little, big], "score_margin")
    set_blueprint(system, [blueprint_step(system, [blueprint_of(little), blueprint_of(big)])])
    return system.eval()


def test_policy_forward_matches_the_routing_it_was_calibrated_with() -> None:
    system = _big_little()
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        logits = system.path_logits(x)
        conf = torch.stack([confidence(lg, "score_margin") for lg in logits]).numpy()
        theta = float(np.median(conf[0]))
        system.set_threshold(theta)
        out, served = system.route(x)
    want = served_path(conf, theta)
    assert served.tolist() == want.tolist() and 0 < want.mean() < 1      # both paths serve some samples
    for k in (0, 1):
        assert torch.allclose(out[served == k], logits[k][served == k], atol=1e-6)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        system.set_threshold(1.5)


def test_early_exit_points_and_cutting_of_zoo_models() -> None:
    tcn = build_model("tcn", (1, 40), 10)
    assert exit_points(tcn) == ["features.0", "features.1", "features.2", "features.3"]
    assert resolve_exit(tcn, 0.5) == "features.2" and resolve_exit(tcn, 0.01) == "features.0"
    with pytest.raises(ValueError, match="'features.9' is not a unit of the model; allowed: features.0, features.1"):
        resolve_exit(tcn, "features.9")
    system = EarlyExit.from_model(tcn, ["features.1", 0.75], 10, (1, 40)).eval()
    assert system.exits == ["features.1", "features.3"] and system.path_names == ["exit1", "exit2", "final"]
    x = torch.randn(5, 1, 40)
    with torch.no_grad():
        assert torch.allclose(system.path_logits(x)[-1], tcn.eval()(x), atol=1e-6)   # the final path is the model
        assert torch.equal(system(x), system.path_logits(x)[-1])                    # thresholds start at 1
    with pytest.raises(ValueError, match="same unit twice"):
        EarlyExit.from_model(tcn, ["features.2", 0.5], 10, (1, 40))


def test_systems_save_and_load_with_their_thresholds(tmp_path: Path) -> None:
    tcn = build_model("tcn", (1, 40), 10, channels=[8, 8, 8, 8])
    early = EarlyExit.from_model(tcn, [0.5], 10, (1, 40))
    set_blueprint(early, [blueprint_step(early, [blueprint_of(tcn)], exits=early.exits, num_classes=10,
                                         input_shape=[1, 40])])
    early.set_threshold(0.3)
    big_little = _big_little()
    big_little.set_threshold(0.25)
    state = State.of(tcn, (1, 40), 10).with_model(early, "early").with_model(big_little, "bl")
    loaded = State.load(state.save(tmp_path / "state"))
    x = torch.randn(16, 1, 40)
    assert torch.equal(loaded.models["early"].thresholds, torch.tensor([0.3]))
    with torch.no_grad():
        assert torch.equal(loaded.models["early"].eval()(x), early.eval()(x))
        img = torch.randn(16, 1, 8, 8)
        assert torch.equal(loaded.models["bl"].eval()(img), big_little(img))
    assert isinstance(loaded.models["bl"].parts[1], nn.Module) and loaded.models["bl"].measure == "score_margin"


def test_variable_width_paths_equal_their_plain_models_and_reload(tmp_path: Path) -> None:
    from edgeflow.methods.adaptive import VariableWidth, width_loss

    base = build_model("cnn", (1, 8, 8), 10, channels=[16, 32])
    system = VariableWidth("cnn", (1, 8, 8), 10, {"channels": [16, 32], "dropout": 0.0}, [0.25, 0.5, 1.0],
                           source=base).eval()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for k, channels in enumerate(([4, 8], [8, 16], [16, 32])):
            plain = system.materialize(k).eval()
            assert [m.out_channels for m in plain.modules() if isinstance(m, nn.Conv2d)] == channels
            assert torch.allclose(system.step(k, x)[0], plain(x), atol=1e-5)   # the same function
    assert sum(p.numel() for p in system.parameters()) == 5178 + 2 * (4 + 8) + 2 * (8 + 16)   # + a BN per narrower width
    system.train()
    loss = width_loss(system, x, torch.arange(6))
    loss.backward()
    narrow = system.net.features[0][0].weight.grad
    assert narrow[:4].abs().sum() > 0 and narrow[8:].abs().sum() > 0      # every width trains the shared weights
    system.eval().set_threshold(0.4)
    set_blueprint(system, [blueprint_step(system, [], spec=system.spec, widths=system.widths)])
    plain = build_model("cnn", (1, 8, 8), 10)           # (base now lives inside the system, slimmed)
    loaded = State.load(State.of(plain, (1, 8, 8), 10).with_model(system, "vw").save(tmp_path / "s")).models["vw"]
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), system(x)) and loaded.thresholds.tolist() == pytest.approx([0.4, 0.4])
