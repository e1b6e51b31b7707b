"""No silent no-ops and no late surprises: mistakes that only show late (a layer pattern that matches
nothing, weights-only quantization before an int8 export) stop the run with one line before any training."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.models import build_model
from edgeflow.stages._patterns import require_matches

from conftest import BIN

FAST = ["stages.train.max_epochs=1", "trainer.progress_bar=false", "tracking.enabled=false"]
CNN_LAYERS = "layers: features.0.0, features.2.0, classifier"
WEIGHTS_ONLY = ("32 (weights-only quantization) cannot be exported as int8 QDQ, which stage {stage!r} needs; "
                "set act_bits to 2..8, or drop the export and profile stages (analyze costs weights-only models)")

MISTAKES = [  # (overrides: command-line strings or (key, value) set after composing, the one-line error)
    (["recipe=prune_agp", "stages.prune.exclude=[classifer]"],
     f"stages.prune.exclude: pattern 'classifer' matches no Conv/Linear layer; did you mean 'classifier'? {CNN_LAYERS}"),
    (["recipe=prune_structured", "stages.prune.exclude=[features.0.0,features.4]"],
     f"stages.prune.exclude: pattern 'features.4' matches no Conv/Linear layer; did you mean 'features.2.0'? "
     f"{CNN_LAYERS}"),
    (["recipe=ptq_int8", "+stages.ptq.overrides={head:{weight_bits:4}}"],
     f"stages.ptq.overrides: pattern 'head' matches no Conv/Linear layer; {CNN_LAYERS}"),
    (["recipe=qat_int8", ("stages.qat.overrides", {"re:features\\.[5-9].*": {"weight_bits": 4}})],
     "stages.qat.overrides: pattern 're:features\\\\.[5-9].*' matches no Conv/Linear layer; "
     f"did you mean 'features.2.0'? {CNN_LAYERS}"),
    (["recipe=qat_int8", ("stages.qat.overrides", {"re:feat[": {"weight_bits": 4}})],
     "stages.qat.overrides: pattern 're:feat[' is not a valid regular expression: "
     "unterminated character set at position 4"),
    (["recipe=ptq_int8", "stages.ptq.act_bits=32"], "stages.ptq.act_bits: " + WEIGHTS_ONLY.format(stage="export")),
    (["recipe=ptq_int8", "stages.ptq.act_bits=32", "~stages.export"],
     "stages.ptq.act_bits: " + WEIGHTS_ONLY.format(stage="profile")),
    (["recipe=qat_mixed", "+stages.qat.overrides.classifier.act_bits=32"],
     "stages.qat.overrides.classifier.act_bits: " + WEIGHTS_ONLY.format(stage="export")),
]


def compose(overrides: list) -> DictConfig:
    """The config of command-line ``overrides``, then ``(key, value)`` settings (keys Hydra cannot parse)."""
    cfg = edgeflow.compose([o for o in overrides if isinstance(o, str)] + FAST)
    for key, value in (o for o in overrides if isinstance(o, tuple)):
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg


@pytest.mark.parametrize(("overrides", "error"), MISTAKES, ids=[str(m[0][1:]) for m in MISTAKES])
def test_mistake_stops_the_run_with_one_line_before_training(workdir: Path, overrides: list, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        edgeflow.run(compose(overrides))
    assert str(info.value) == error
    assert list(workdir.rglob("train")) == []  # no stage ran: the train stage's folder was never made


@pytest.mark.parametrize(("overrides", "error"), [MISTAKES[0], MISTAKES[5]], ids=["check", "validation"])
def test_cli_prints_the_line_and_exits_2(workdir: Path, overrides: list[str], error: str) -> None:
    proc = subprocess.run([str(BIN / "edgeflow"), *overrides, *FAST], capture_output=True, text=True, cwd=workdir,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"edgeflow: config error: {error}"
    assert list(workdir.rglob("train")) == [] and "stage train" not in proc.stdout + proc.stderr


def test_long_layer_lists_are_shortened() -> None:
    model = build_model("mobilenet_v1", (3, 32, 32), 10)
    with pytest.raises(ConfigError) as info:
        require_matches("exclude", ["fc"], model, lambda name, pattern: name == pattern)
    assert str(info.value) == (
        "exclude: pattern 'fc' matches no Conv/Linear layer; layers: features.0.0, features.1.0, features.2.0, "
        "features.3.0, features.4.0, features.5.0, features.6.0, features.7.0, features.8.0, features.9.0, "
        "features.10.0, ..., classifier (28 layers)")


def test_patterns_that_match_pass_after_structured_thinning(workdir: Path) -> None:
    """Layer names survive thinning and quantization: patterns checked on the initial model hold later."""
    result = edgeflow.run(edgeflow.compose([
        "recipe=prune_structured", *FAST, "stages.prune.max_epochs=1", "stages.prune.exclude=[classifier]",
        "+stage@stages.ptq=ptq", "+stages.ptq.overrides={features.2.0:{weight_bits:4}}"]))
    assert result.metrics["ptq/weight_bits"] < 8


def test_weights_only_model_is_analyzed(workdir: Path) -> None:
    result = edgeflow.run(edgeflow.compose(["recipe=ptq_int8", "stages.ptq.act_bits=32", "~stages.export",
                                            "~stages.profile", *FAST]))
    assert len(list(workdir.rglob("train"))) == 1  # runs land in workdir: the "no train folder" checks above hold
    assert result.metrics["analyze_int8/weight_bits"] == 8.0
    assert result.metrics["analyze_int8/flash_bytes"] < result.metrics["analyze/flash_bytes"]
