"""Bring your own model and data (``_target_``), and start from trained weights (``model.checkpoint``).

The worked example in ``examples/custom`` runs from its YAML recipe; mistakes in a target or a
checkpoint are one-line config errors naming the key, before anything trains.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader, TensorDataset

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError
from edgeflow.state import State, model_version

from conftest import BIN, ROOT, tracking_uri

EXAMPLE = ROOT / "examples" / "custom"
FAST = ["trainer.progress_bar=false", "tracking.enabled=false"]
CUSTOM = [f"hydra.searchpath=[file://{EXAMPLE / 'conf'}]", "recipe=custom_int8"]


@pytest.fixture
def example(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example's modules importable (as ``PYTHONPATH=examples/custom`` does) and runs in ``workdir``."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("EDGEFLOW_HOME", str(workdir))
    return workdir


def _error(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        validate(edgeflow.compose(overrides))
    return str(info.value)


# ----------------------------------------------------------------------------- the worked example
def test_example_model_and_data_run_train_ptq_export_profile_from_the_yaml_recipe(example: Path) -> None:
    result = edgeflow.run(edgeflow.compose([*CUSTOM, "stages.train.max_epochs=8", *FAST]))
    m = result.metrics
    assert m["evaluate/test_acc"] > 95.0, m
    assert m["ptq/acc_drop"] < 1.5, m
    assert m["profile/test_acc"] == m["ptq/test_acc"]  # the int8 program scores as the fake-quant model
    assert m["profile/agreement"] == 100.0 and m["profile/top1_agreement"] == 100.0  # bit-equal to onnxruntime
    assert m["profile/fresh_export"] == 0.0  # profile measured the export stage's file
    assert result.state.input_shape == (1, 8, 8) and result.state.num_classes == 10  # read from the datamodule
    loaded = State.load(result.run_dir / "state")  # blueprint: the import path, then the quantize step
    assert model_version(loaded.model) == model_version(result.model)


@pytest.mark.parametrize("target, pythonpath, line", [
    ("nets.TinyCnn", True, "edgeflow: config error: model._target_: cannot import nets.TinyCnn: "
                           "nets has no attribute 'TinyCnn' (did you mean nets.TinyCNN?)"),
    ("nets.TinyCNN", False, "edgeflow: config error: model._target_: cannot import nets.TinyCNN: no module "
                            "named 'nets' (is its folder on PYTHONPATH, or the package installed?)"),
])
def test_a_target_that_does_not_import_is_one_line_and_exit_2(tmp_path: Path, target: str, pythonpath: bool,
                                                              line: str) -> None:
    env = {**os.environ, "EDGEFLOW_HOME": str(tmp_path), "PYTHONPATH": str(EXAMPLE) if pythonpath else ""}
    proc = subprocess.run([str(BIN / "edgeflow"), "--config-dir", str(EXAMPLE / "conf"), "recipe=custom_int8",
                           f"model._target_={target}"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("overrides, message", [
    (["+model.widht=4"], "model.widht: is not a parameter of nets.TinyCNN; its parameters: "
                        "input_shape, num_classes, width"),
    (["model._target_=math.pi"], "model._target_: math.pi is not callable (it is a float)"),
    (["model._target_=TinyCNN"], "model._target_: must be an import path 'module.attribute' "
                                 "(e.g. mypkg.nets.MyNet), got 'TinyCNN'"),
    (["model=cnn", "+model._target_=nets.TinyCNN"],
     "model._target_: is set together with name='cnn' (a zoo model); use one: a model YAML with _target_ "
     "and no name (override /model: <that file>)"),
    (["dataset._target_=datamodules.Digits"],
     "dataset._target_: cannot import datamodules.Digits: datamodules has no attribute 'Digits' "
     "(did you mean datamodules.DigitsData?)"),
    (["+dataset.shuffle=true"], "dataset.shuffle: is not a parameter of datamodules.DigitsData; its parameters: "
                                "batch_size, val_fraction, test_fraction, split_seed, seed"),
    (["dataset.num_classes=1"], "dataset.num_classes: must be an integer >= 2, or null (read from the datamodule), "
                                "got 1"),
])
def test_target_mistakes_name_the_key(example: Path, overrides: list[str], message: str) -> None:
    assert _error([*CUSTOM, *overrides]) == message


def test_a_zoo_model_trains_on_a_users_datamodule(example: Path) -> None:
    """The shape a zoo model needs comes from the datamodule when the dataset YAML leaves it null."""
    cfg = only_stages(edgeflow.compose([*CUSTOM, "model=mlp", "stages.train.max_epochs=3", *FAST]), "train", "evaluate")
    assert validate(cfg).model.input_shape is None  # unknown until the datamodule is set up
    result = edgeflow.run(cfg)
    assert result.state.input_shape == (1, 8, 8)
    assert result.metrics["evaluate/test_acc"] > 90.0


# ---------------------------------------------------------------------------- what a datamodule owes
class _Loaders(pl.LightningDataModule):
    """Test datamodules: 40 random samples per split, in batches of 8."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.data = TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=8)

    val_dataloader = test_dataloader = train_dataloader


class Unlabelled(_Loaders):
    """No num_classes attribute."""

    def __init__(self) -> None:
        super().__init__(torch.rand(40, 3, 5), torch.randint(0, 3, (40,)))


class IntegerImages(_Loaders):
    """x is uint8: not a float batch."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__(torch.randint(0, 255, (40, 3, 5), dtype=torch.uint8), torch.randint(0, 3, (40,)))


class Declared(_Loaders):
    """input_shape and num_classes attributes."""

    input_shape = (3, 5)
    num_classes = 3

    def __init__(self) -> None:
        super().__init__(torch.rand(40, 3, 5), torch.randint(0, 3, (40,)))


@pytest.mark.parametrize("node, result", [
    ({"_target_": "test_custom_models.Declared"}, ((3, 5), 3)),
    ({"_target_": "test_custom_models.Unlabelled", "num_classes": 3}, ((3, 5), 3)),
    ({"_target_": "test_custom_models.Unlabelled"},
     "dataset.num_classes: is required: test_custom_models.Unlabelled has no num_classes attribute; "
     "declare dataset.num_classes"),
    ({"_target_": "test_custom_models.Declared", "num_classes": 4},
     "dataset.num_classes: is declared 4 but test_custom_models.Declared.num_classes is 3"),
    ({"_target_": "test_custom_models.Unlabelled", "num_classes": 3, "input_shape": [5, 3]},
     "dataset.input_shape: is [5, 3] but test_custom_models.Unlabelled's test batches have samples of shape [3, 5]"),
    ({"_target_": "test_custom_models.IntegerImages"},
     "dataset._target_: test_custom_models.IntegerImages must yield batches (x float [B, ...], y integer [B]); "
     "its first test batch is (torch.uint8 [8, 3, 5], torch.int64 [8])"),
])
def test_data_shape_reads_the_datamodule_or_the_declared_values(node: dict, result: tuple | str) -> None:
    from edgeflow.data import build_datamodule, data_shape, to_dataset_config

    cfg = to_dataset_config(node)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    if isinstance(result, str):
        with pytest.raises(ConfigError) as info:
            data_shape(datamodule, cfg)
        assert str(info.value) == result
    else:
        assert data_shape(datamodule, cfg) == result


# ------------------------------------------------------------------------------------ checkpoints
def only_stages(cfg: DictConfig, *names: str) -> DictConfig:
    """``cfg`` with only the named stages, in that order."""
    with open_dict(cfg):
        cfg.stages = {name: cfg.stages[name] for name in names}
    return cfg


def test_train_once_then_start_from_the_checkpoint_in_every_form(workdir: Path) -> None:
    """train_float, then ptq_pretrained from its state folder: no training, the same float accuracy,
    and acc_drop against the carried reference; the MLflow run URI, the Lightning checkpoint and a
    plain state dict give the same weights."""
    uri = tracking_uri(workdir)
    first = edgeflow.run(edgeflow.compose(["recipe=train_float", "stages.train.max_epochs=3", f"tracking.uri={uri}",
                                           "trainer.progress_bar=false"]))
    accuracy = first.metrics["evaluate/test_acc"]

    second = edgeflow.run(edgeflow.compose(["recipe=ptq_pretrained", f"model.checkpoint={first.run_dir / 'state'}",
                                            *FAST]))
    assert list(second.state.history) == ["evaluate", "ptq", "export", "profile"]  # nothing trained
    assert second.metrics["evaluate/test_acc"] == accuracy
    assert second.metrics["ptq/float_test_acc"] == accuracy  # the checkpoint's reference, carried
    assert second.metrics["profile/acc_drop"] == accuracy - second.metrics["profile/test_acc"]

    torch.save(first.model.state_dict(), workdir / "weights.pt")
    for checkpoint in (f"runs:/{first.mlflow_run_id}", str(first.run_dir / "train" / "best.ckpt"),
                       str(workdir / "weights.pt")):
        again = edgeflow.run(only_stages(edgeflow.compose(["recipe=ptq_pretrained", f"model.checkpoint={checkpoint}",
                                                          f"tracking.uri={uri}", *FAST]), "evaluate"))
        assert model_version(again.model) == model_version(first.model), checkpoint
        assert again.metrics["evaluate/test_acc"] == accuracy, checkpoint


@pytest.mark.parametrize("checkpoint, message", [
    ("{tmp}/missing/state", "model.checkpoint: {tmp}/missing/state does not exist; must be a saved state folder "
                            "(<run>/state), a .pt/.pth/.ckpt weights file, or an MLflow run URI "
                            "runs:/<run_id>[/<artifact path>]"),
    ("{tmp}", "model.checkpoint: {tmp} is a folder without state.json (nor state/state.json): "
              "not a saved edgeflow state"),
    ("{tmp}/notes.txt", "model.checkpoint: {tmp}/notes.txt: a weights file ends in .pt, .pth, .ckpt; must be a "
                        "saved state folder (<run>/state), a .pt/.pth/.ckpt weights file, or an MLflow run URI "
                        "runs:/<run_id>[/<artifact path>]"),
    ("runs:/0123abcd", "model.checkpoint: no MLflow run '0123abcd' in sqlite:///{tmp}/mlflow.db"),
    ("models:/tiny/1", "model.checkpoint: must be a saved state folder (<run>/state), a .pt/.pth/.ckpt weights "
                       "file, or an MLflow run URI runs:/<run_id>[/<artifact path>], got 'models:/tiny/1'"),
])
def test_a_missing_checkpoint_is_a_config_error(workdir: Path, checkpoint: str, message: str) -> None:
    (workdir / "notes.txt").write_text("not weights")
    uri = tracking_uri(workdir)
    if checkpoint.startswith("runs:/"):  # a store that exists, without that run
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=uri).search_experiments()
    spec = checkpoint.format(tmp=workdir)
    assert _error(["recipe=ptq_pretrained", f"model.checkpoint={spec}", f"tracking.uri={uri}"]) == \
        message.format(tmp=workdir)


def test_a_state_of_another_model_stops_the_run_before_any_stage(workdir: Path) -> None:
    from edgeflow.models import build_model

    State.of(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), 10).save(workdir / "state")
    cfg = edgeflow.compose(["recipe=ptq_pretrained", f"model.checkpoint={workdir / 'state'}", "model.channels=[8,16]",
                            *FAST])
    with pytest.raises(ConfigError) as info:
        edgeflow.run(cfg)
    assert str(info.value) == (
        f"model.checkpoint: {workdir / 'state'} holds cnn(input_shape=[1, 8, 8], num_classes=10, channels=[16, 32], "
        "dropout=0.0), but the config builds cnn(input_shape=[1, 8, 8], num_classes=10, channels=[8, 16], "
        "dropout=0.0); configure the model (and dataset) the checkpoint was trained with")


def test_weights_that_do_not_fit_the_model_name_the_checkpoint(tmp_path: Path) -> None:
    from edgeflow.models import build_model
    from edgeflow.models.checkpoint import start_from

    torch.save(build_model("mlp", (1, 8, 8), 10, hidden=[16]).state_dict(), tmp_path / "mlp.pt")
    with pytest.raises(ConfigError) as info:
        start_from(str(tmp_path / "mlp.pt"), build_model("mlp", (1, 8, 8), 10, hidden=[32]), "")
    assert str(info.value) == (f"checkpoint: {tmp_path / 'mlp.pt'} does not fit the configured model "
                               "(other shapes: net.1.weight, net.1.bias, net.3.weight)")
