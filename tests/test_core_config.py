"""Config composition and validation: every option composes; every mistake fails fast in one line."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError

from conftest import BIN, ROOT

CONF = ROOT / "conf"
# a dataset whose input shape each model accepts (validation only: no files are read)
DATASET_FOR = {
    "mlp": ["dataset=digits"], "cnn": ["dataset=digits"], "tcn": ["dataset=mnist1d"],
    "resnet8": ["dataset=cifar10"],
    "dscnn": ["dataset=synthetic", "dataset.input_shape=[1,49,10]", "dataset.num_classes=12"],
    "mobilenet_v1": ["dataset=synthetic", "dataset.input_shape=[3,96,96]", "dataset.num_classes=2"],
    "autoencoder": ["dataset=synthetic", "dataset.input_shape=[640]"],
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("recipe", options("recipe"))
def test_every_recipe_composes_and_validates(recipe: str) -> None:
    cfg = edgeflow.compose([f"recipe={recipe}"])
    typed = validate(cfg)
    assert typed.stages, recipe
    assert list(typed.stages) == list(cfg.stages)  # order as written in the recipe


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_with_a_fitting_dataset(model: str) -> None:
    typed = validate(edgeflow.compose([f"model={model}", *DATASET_FOR[model]]))
    assert typed.model.name == model
    assert list(typed.model.input_shape) == list(typed.dataset.input_shape)


@pytest.mark.parametrize("group", ["dataset", "hardware", "trainer", "tracking"])
def test_every_group_option_composes(group: str) -> None:
    for option in options(group):
        extra = ["model=mlp"] if group == "dataset" else []
        typed = validate(edgeflow.compose([f"{group}={option}", *extra]))
        assert typed is not None


@pytest.mark.parametrize("override, key", [
    ("stages.train.max_epochs=-3", "stages.train.max_epochs"),
    ("stages.train.max_epochs=abc", "stages.train.max_epochs"),
    ("stages.train.optimizer=lbfgs", "stages.train.optimizer"),
    ("+stages.train.max_epoch=3", "stages.train.max_epoch"),
    ("+stages.bogus.kind=teleport", "stages.bogus.kind"),
    ("model=tcn", "model.name"),
    ("dataset.batch_size=0", "dataset.batch_size"),
])
def test_invalid_config_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(edgeflow.compose(["recipe=quickstart", override]))
    message = str(info.value)
    assert message.startswith(key + ":"), message
    assert "\n" not in message


def test_unknown_stage_kind_lists_the_allowed_kinds() -> None:
    with pytest.raises(ConfigError, match="allowed: .*train"):
        validate(edgeflow.compose(["recipe=quickstart", "+stages.bogus.kind=teleport"]))


def test_cli_config_error_is_one_line_and_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    proc = subprocess.run([str(BIN / "edgeflow"), "recipe=quickstart", "stages.train.max_epochs=-3"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "stages.train.max_epochs" in lines[0], proc.stderr
    assert elapsed < 5, elapsed
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


def test_help_answers_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    proc = subprocess.run([str(BIN / "edgeflow"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "recipe" in proc.stdout
    assert time.perf_counter() - started < 5
