"""The pipeline's State: a stage that changes the model after export never lets profile measure the
old file; the final state is saved with the run and loads back to the same model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

import edgeflow
from edgeflow.state import State, model_version

FAST = ["trainer.progress_bar=false", "tracking.enabled=false"]


def test_profile_never_measures_an_export_made_before_the_model_changed(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=ptq_int8", "stages.train.max_epochs=5", *FAST])
    s = cfg.stages
    wreck = OmegaConf.merge(s.train, {"lr": 5.0, "max_epochs": 1, "optimizer": "sgd", "momentum": 0.0,
                                      "scheduler": "none"})
    with open_dict(cfg):  # train → evaluate → ptq → export → wreck (train again) → evaluate → profile
        cfg.stages = {"train": s.train, "evaluate": s.evaluate, "ptq": s.ptq, "export": s.export,
                      "wreck": wreck, "evaluate_after": s.evaluate, "profile": s.profile}
    m = edgeflow.run(cfg).metrics

    assert m["ptq/test_acc"] > 90 and m["evaluate_after/test_acc"] < 60  # the late stage wrecked the model
    assert m["profile/fresh_export"] == 1.0  # the export was stale: profile exported the current model
    assert m["profile/test_acc"] == pytest.approx(m["evaluate_after/test_acc"], abs=3.0)
    assert m["profile/agreement"] >= 99.9


def test_final_state_is_saved_and_loads_back_to_the_same_model(workdir: Path) -> None:
    result = edgeflow.run(edgeflow.compose(["recipe=quickstart", "stages.train.max_epochs=2",
                                            "stages.prune.end=1", "stages.prune.max_epochs=2",
                                            "stages.qat.max_epochs=1", *FAST]))
    assert result.state.history == ("train", "evaluate", "analyze", "prune", "qat", "export", "profile")
    loaded = State.load(result.run_dir / "state")
    assert model_version(loaded.model) == model_version(result.model)
    assert loaded.reference_metrics["test_acc"] == result.metrics["evaluate/test_acc"]
    assert loaded.artifact("onnx") == Path(result.artifacts["export/onnx"])  # still the current model's export
    x = torch.rand(16, 1, 8, 8)
    loaded.model.eval()
    result.model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model(x))


def test_a_stage_that_changes_the_state_it_was_given_is_an_error() -> None:
    from edgeflow.models import build_model
    from edgeflow.pipeline import _check_result
    from edgeflow.state import StageResult

    given = State.of(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), 10)
    versions = {"model": model_version(given.model)}
    copy = given.copy_model()
    with torch.no_grad():
        next(copy.parameters()).mul_(2)
    _check_result("ok", "train", StageResult(given.with_model(copy)), given, versions)  # changed a copy: fine
    with torch.no_grad():
        next(given.model.parameters()).mul_(2)
    with pytest.raises(RuntimeError, match="stage 'bad' .* changed the models it was given \\(model\\)"):
        _check_result("bad", "train", StageResult(given), given, versions)
    with pytest.raises(TypeError, match="must return a StageResult"):
        _check_result("bad", "train", {"acc": 1.0}, given, versions)
