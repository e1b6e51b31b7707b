"""The adaptive stage on digits: a big/little system calibrated on validation data only (the test
split is never opened before the threshold is fixed), its figures, curve files and saved state, its
int8 parts exported and run on the int8 runtime with decisions agreeing with the PyTorch system; an
early-exit system; a variable-width one; and one-line errors for bad exits, thresholds and little models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.methods.adaptive import calibrate as cal
from edgeflow.pipeline import prepare
from edgeflow.pipeline import run as run_pipeline
from edgeflow.state import State

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]


def test_big_little_is_calibrated_on_validation_only(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = edgeflow.compose(["recipe=big_little", *QUIET, "stages.train.max_epochs=10", "stages.adaptive.max_epochs=6"])
    prepared = prepare(cfg)
    data = prepared.datamodule
    opened: list[str] = []
    for split in ("train", "val", "test"):
        loader = getattr(data, f"{split}_dataloader")
        monkeypatch.setattr(data, f"{split}_dataloader", lambda loader=loader, split=split: (opened.append(split), loader())[1])
    import edgeflow.stages.adaptive as stage

    marks: dict[str, int] = {}
    real_build, real_choose = stage._build, cal.choose
    monkeypatch.setattr(stage, "_build", lambda *a: (marks.setdefault("built", len(opened)), real_build(*a))[1])
    monkeypatch.setattr(cal, "choose", lambda *a, **k: (marks.setdefault("chosen", len(opened)), real_choose(*a, **k))[1])
    r = run_pipeline(cfg, prepared)
    m = r.metrics
    # from the system's training to the choice of θ the stage opens train and val loaders, never test
    between = opened[marks["built"]:marks["chosen"]]
    assert "val" in between and "test" not in between and "test" in opened[marks["chosen"]:]
    assert m["adaptive/rule_met"] == 1 and 0 <= m["adaptive/theta"] <= 1
    assert m["adaptive/val_acc"] >= m["adaptive/big_val_acc"] - 0.5                     # the rule, on validation
    assert m["adaptive/share_little"] + m["adaptive/share_big"] == pytest.approx(1.0)
    assert m["adaptive/energy_ratio"] < 0.9 and m["adaptive/share_little"] > 0.15        # little serves some
    assert m["adaptive/test_acc"] >= m["adaptive/big_test_acc"] - 2.0
    little_uj = m["adaptive/expected_energy_uj"] - m["adaptive/share_big"] * m["adaptive/big_energy_uj"]
    assert 0 < little_uj < 0.5 * m["adaptive/big_energy_uj"]                             # every sample ran little
    rows = Path(r.artifacts["adaptive/curve_csv"]).read_text().splitlines()
    assert rows[0].startswith("theta,val_acc,val_share_little,val_share_big,val_expected_energy_uj") and len(rows) > 100
    assert Path(r.artifacts["adaptive/curve_png"]).stat().st_size > 10_000
    # the int8 system: one QDQ file per part + policy.json, run on the int8 runtime, θ re-calibrated on its scores
    policy = json.loads((r.run_dir / "export" / "adaptive" / "policy.json").read_text())
    assert policy["order"] == ["little", "big"] and policy["files"] == ["little.onnx", "big.onnx"]
    assert policy["thresholds"] == pytest.approx([m["adaptive/theta"]]) and policy["measure"] == "score_margin"
    assert m["profile/adaptive/decision_agreement"] >= 99.0
    assert abs(m["profile/adaptive/test_acc"] - m["adaptive/test_acc"]) <= 1.0
    assert m["profile/adaptive/little/energy_uj"] < 0.5 * m["profile/adaptive/big/energy_uj"] == pytest.approx(
        0.5 * m["profile/energy_uj"])
    from tasks.profile_app import main as edgeflow_profile                  # the CLI takes the export folder

    edgeflow_profile([str(r.run_dir / "export" / "adaptive"), "hardware=cortex_m4", "dataset=digits"])
    printed = capsys.readouterr().out
    assert printed.startswith("little: ") and f"big: 83,264 MACs, flash 5,776 B" in printed
    assert f"{m['profile/adaptive/test_acc']:.2f} % on 359 samples" in printed     # θ as calibrated, the test split
    loaded = State.load(r.run_dir / "state")                          # the system is one saveable module
    system = loaded.models["adaptive"].eval()
    assert system.thresholds.tolist() == pytest.approx([m["adaptive/theta"]])
    x, y = next(iter(prepared.datamodule.test_dataloader()))
    with torch.no_grad():
        assert torch.equal(system(x), r.state.models["adaptive"].eval()(x))


def test_early_exit_on_digits(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose(["recipe=early_exit", "model=cnn", "dataset=digits", *QUIET,
                                       "stages.train.max_epochs=6", "stages.adaptive.exits=[features.0]",
                                       "stages.adaptive.max_epochs=6", "stages.adaptive.lr=0.005",
                                       "stages.adaptive.train=heads"]))
    m = r.metrics
    assert m["adaptive/share_exit1"] + m["adaptive/share_final"] == pytest.approx(1.0)
    assert m["adaptive/big_test_acc"] == pytest.approx(m["evaluate/test_acc"])   # heads only: backbone unchanged
    assert m["adaptive/energy_ratio"] <= 1.0 + m["adaptive/share_final"] * 0.2  # the exit head costs little
    assert m["adaptive/test_acc"] >= m["adaptive/big_test_acc"] - 2.0


def test_variable_width_on_digits(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose(["recipe=variable_width", *QUIET, "stages.train.max_epochs=6",
                                       "stages.adaptive.max_epochs=3"]))
    m = r.metrics
    assert sum(m[f"adaptive/share_{n}"] for n in ("w25", "w50", "w100")) == pytest.approx(1.0)
    assert m["adaptive/params"] == 5250 and m["adaptive/static_params"] == 438 + 1442 + 5178   # one net vs three
    assert m["adaptive/rule_met"] == 1 and m["adaptive/val_acc"] >= m["adaptive/big_val_acc"] - 0.5
    assert m["adaptive/energy_ratio"] < 1.0


@pytest.mark.parametrize("overrides, message", [
    (["recipe=early_exit", "stages.adaptive.exits=[features.9]"],
     "stages.adaptive.exits: exit point 'features.9' is not a unit of the model; allowed: features.0, features.1"),
    (["recipe=big_little", "stages.adaptive.theta=1.5"],
     "stages.adaptive.theta: must be null (calibrate) or a threshold in [0, 1], got 1.5"),
    (["recipe=big_little", "stages.adaptive.theta=-0.1"], "stages.adaptive.theta: must be null (calibrate)"),
    (["recipe=big_little", "stages.adaptive.little.name=tcn", "~stages.adaptive.little.channels"],
     "stages.adaptive.little.name: tcn expects input_shape (C, L)"),
    (["recipe=variable_width", "model=resnet8"],
     "stages.adaptive.system: variable_width needs a plain zoo model among cnn, tcn, mlp (not pruned or quantized), "
     "got resnet8"),
    (["recipe=variable_width", "stages.adaptive.widths=[0.5,0.25]"],
     "stages.adaptive.widths: must be two or more increasing fractions in (0, 1], got [0.5, 0.25]"),
    (["recipe=big_little", "~stages.adaptive.rule", "+stages.adaptive.rule={max_acc_under: {joules: 3}}"],
     "stages.adaptive.rule.max_acc_under: must be a mapping of one cost (energy_uj or latency_ms)"),
])
def test_bad_adaptive_input_is_one_line_before_training(workdir: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        prepare(edgeflow.compose([*overrides, *QUIET]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert not (workdir / "outputs").exists()
