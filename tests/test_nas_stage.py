"""The nas stage on real data (digits): a tiny search per strategy through the pipeline, hard
constraints rejecting candidates before training (fits counted), the chosen architecture retrained
under a flash budget, and candidates that fail to build recorded as failed trials."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

import edgeflow
from edgeflow.hardware import analyze
from edgeflow.models.blueprint import blueprint_of

TINY = ["recipe=nas_cnn_digits", "~stages.train", "~stages.evaluate", "~stages.analyze", "trainer.progress_bar=false",
        "tracking.enabled=false", "cache.enabled=false", "stages.nas.trial_epochs=1", "stages.nas.subset=0.2",
        "stages.nas.n_trials=2", "stages.nas.pruner=none", "stages.nas.constraints=[fits]", "stages.nas.plots=false",
        "stages.nas.objectives=[val_acc,params]"]
DROPOUT_0_02 = {"type": "categorical", "values": [0.0, 0.2]}
STRATEGIES = {  # stages.nas.<key> = value (None deletes the key)
    "random": {}, "tpe": {}, "nsga2": {}, "gp": {},
    "evolution": {"reward_target": 2000, "population": 2, "tournament": 2},
    "rl": {"reward_target": 2000},
    "cmaes": {"objectives": ["val_acc"], "space.choices.blocks": None},
    "grid": {"space.choices.blocks.depth.high": 1, "space.choices.dropout": DROPOUT_0_02},
}


@pytest.fixture(scope="module")
def tiny() -> DictConfig:
    return edgeflow.compose(TINY)


def _with(cfg: DictConfig, changes: dict[str, object]) -> DictConfig:
    """A copy of ``cfg`` with ``stages.nas.<key>`` set (or deleted for None)."""
    cfg = copy.deepcopy(cfg)
    OmegaConf.set_struct(cfg, False)
    for key, value in changes.items():
        parent, _, leaf = f"stages.nas.{key}".rpartition(".")
        if value is None:
            del OmegaConf.select(cfg, parent)[leaf]
        else:
            OmegaConf.update(cfg, f"stages.nas.{key}", value, merge=False, force_add=True)
    return cfg


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "nas" / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_tiny_search_per_strategy_hands_the_chosen_zoo_model_on(workdir: Path, tiny: DictConfig, strategy: str) -> None:
    journal = workdir / "study.log"  # random runs on Optuna's journal file storage, the others on SQLite
    storage = {"storage": str(journal)} if strategy == "random" else {}
    r = edgeflow.run(_with(tiny, {"strategy": strategy, **STRATEGIES[strategy], **storage}))
    assert journal.is_file() == (strategy == "random") and (workdir / "optuna.db").is_file() != (strategy == "random")
    m = r.metrics
    assert (m["nas/trials"], m["nas/complete"], m["nas/ran"], m["nas/failed"]) == (2, 2, 2, 0), m
    assert 0 < m["nas/val_acc"] <= 100 and m["nas/fits"] == 1
    rows = _rows(r.run_dir)
    assert [row["outcome"] for row in rows] == ["complete", "complete"]
    chosen = yaml.safe_load(Path(r.artifacts["nas/architecture"]).read_text())
    options = {k: v for k, v in chosen.items() if k not in ("name", "input_shape", "num_classes", "checkpoint")}
    (step,) = blueprint_of(r.model)
    assert step["name"] == chosen["name"] == "cnn" and step["options"] == options
    assert float(rows[int(m["nas/chosen_trial"])]["params"]) == m["nas/params"] == analyze(r.model, (1, 8, 8)).params


def test_constraints_reject_before_training_and_the_choice_retrains_within_budget(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeflow.training as training

    fits: list[str] = []
    real_fit = training.fit

    def counting_fit(model, ctx, cfg, **kw):  # noqa: ANN001, ANN202
        fits.append(ctx.out_dir.name)
        return real_fit(model, ctx, cfg, **kw)

    monkeypatch.setattr(training, "fit", counting_fit)
    r = edgeflow.run(edgeflow.compose([
        "recipe=nas_cnn_digits", "trainer.progress_bar=false", "tracking.enabled=false", "cache.enabled=false",
        "stages.nas.strategy=random", "stages.nas.n_trials=8", "stages.nas.trial_epochs=1", "stages.nas.subset=0.3",
        "stages.nas.constraints=[fits,'flash_bytes <= 2048']", "stages.train.max_epochs=10"]))
    m = r.metrics
    rows = _rows(r.run_dir)
    infeasible = [row for row in rows if row["outcome"] == "infeasible"]
    trained = [name for name in fits if name.startswith("trial_")]
    assert m["nas/trials"] == 8 and m["nas/infeasible"] == len(infeasible) >= 1
    assert len(trained) == m["nas/complete"] + m["nas/pruned"] == 8 - len(infeasible) >= 1
    assert sorted(trained) == sorted(f"trial_{row['number']}" for row in rows if row["outcome"] != "infeasible")
    assert all(float(row["flash_bytes"]) > 2048 and row["reason"] == "violates flash_bytes <= 2048"
               for row in infeasible)
    assert m["analyze/flash_bytes"] == m["nas/flash_bytes"] <= 2048   # the retrained choice, costed at int8
    assert m["evaluate/test_acc"] >= 85, m


def test_a_candidate_that_fails_to_build_is_a_failed_trial(workdir: Path, tiny: DictConfig) -> None:
    r = edgeflow.run(_with(tiny, {"strategy": "random", "n_trials": 6, "objectives": ["params"],
                                  "space.choices.dropout": {"type": "categorical", "values": [0.0, 1.5]}}))
    m = r.metrics
    rows = _rows(r.run_dir)
    failed = [row for row in rows if row["outcome"] == "failed"]
    assert m["nas/trials"] == 6 and m["nas/failed"] == len(failed) >= 1 and m["nas/complete"] == 6 - len(failed) >= 1
    assert all("dropout probability has to be between 0 and 1" in row["reason"] for row in failed)
    assert "val_acc" not in m and "nas/val_acc" not in m  # a cost-only search trains nothing


def test_the_median_pruner_stops_trailing_trials_from_their_epoch_accuracy(workdir: Path, tiny: DictConfig) -> None:
    r = edgeflow.run(_with(tiny, {"strategy": "random", "objectives": ["val_acc"], "pruner": "median",
                                  "trial_epochs": 3, "n_trials": 6}))
    m = r.metrics
    rows = _rows(r.run_dir)
    pruned = [row for row in rows if row["outcome"] == "pruned"]
    assert m["nas/pruned"] == len(pruned) >= 1 and m["nas/complete"] == 6 - len(pruned)
    assert all(row["reason"] in ("pruned after epoch 0", "pruned after epoch 1") and not row.get("val_acc")
               for row in pruned)
    assert all(int(row["number"]) >= 2 for row in pruned)  # the first two trials start the median
    assert m["nas/val_acc"] == max(float(row["val_acc"]) for row in rows if row["outcome"] == "complete")
