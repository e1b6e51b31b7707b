"""Dataset schemas and conf/dataset/*.yaml: torch-free, complete, and strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from edgeflow.core.errors import ConfigError
from edgeflow.data import to_dataset_config
from edgeflow.data.schemas import DATASET_SCHEMAS

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"
NAMES = ["digits", "mnist1d", "synthetic", "cifar10", "mnist"]


def test_every_dataset_has_a_schema_and_a_yaml():
    assert sorted(DATASET_SCHEMAS) == sorted(NAMES)
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_yaml_lists_every_field_and_equals_schema_defaults(name, monkeypatch):
    monkeypatch.delenv("EDGEFLOW_DATA", raising=False)
    yaml = OmegaConf.load(CONF / f"{name}.yaml")
    schema = DATASET_SCHEMAS[name]
    assert yaml.name == name
    assert set(yaml.keys()) == set(schema.__dataclass_fields__)  # every field, nothing else
    assert "input_shape" in yaml and "num_classes" in yaml  # model configs interpolate these
    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), yaml))
    assert obj == schema()


@pytest.mark.parametrize("name", ["mnist1d", "cifar10", "mnist"])
def test_root_follows_edgeflow_data_else_edgeflow_home(name, monkeypatch, tmp_path):
    yaml = OmegaConf.load(CONF / f"{name}.yaml")
    monkeypatch.delenv("EDGEFLOW_DATA", raising=False)
    monkeypatch.setenv("EDGEFLOW_HOME", str(tmp_path / "home"))
    assert yaml.root == str(tmp_path / "home" / "data") == DATASET_SCHEMAS[name]().root
    monkeypatch.setenv("EDGEFLOW_DATA", str(tmp_path))
    assert yaml.root == str(tmp_path)
    assert DATASET_SCHEMAS[name]().root == str(tmp_path)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"name": "digits", "batch_size": 0}, "dataset.batch_size"),
        ({"name": "digits", "num_workers": -1}, "dataset.num_workers"),
        ({"name": "digits", "subset": 0.0}, "dataset.subset"),
        ({"name": "digits", "val_fraction": 1.0}, "dataset.val_fraction"),
        ({"name": "digits", "input_shape": [64]}, "dataset.input_shape"),
        ({"name": "mnist1d", "num_classes": 5}, "dataset.num_classes"),
        ({"name": "synthetic", "n_train": 0}, "dataset.n_train"),
        ({"name": "synthetic", "input_shape": [0, 3]}, "dataset.input_shape"),
        ({"name": "synthetic", "num_classes": 1}, "dataset.num_classes"),
        ({"name": "cifar10", "std": [1.0, 1.0]}, "dataset.std"),
        ({"name": "digits", "bogus": 1}, "dataset.bogus"),
        ({"name": "digits", "batch_size": "many"}, "dataset.batch_size"),
        ({"name": "imagenet"}, "dataset.name"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        to_dataset_config(OmegaConf.create(override))
    assert err.value.key == key
    assert "\n" not in str(err.value)


def test_schema_post_init_uses_bare_keys():
    with pytest.raises(ConfigError) as err:
        DATASET_SCHEMAS["digits"](batch_size=0)
    assert err.value.key == "batch_size"
    with pytest.raises(ConfigError) as err:
        DATASET_SCHEMAS["mnist"](md5={"train-images-idx3-ubyte": "0" * 32})
    assert err.value.key == "md5" and "t10k-labels-idx1-ubyte" in str(err.value)


def test_md5_override_of_one_mnist_file_keeps_the_others():
    cfg = to_dataset_config(OmegaConf.create({"name": "mnist", "md5": {"train-images-idx3-ubyte": "0" * 32}}))
    assert cfg.md5["train-images-idx3-ubyte"] == "0" * 32
    assert cfg.md5["t10k-labels-idx1-ubyte"] == "ec29112dd5afa0611ce80d1b7f02629c"


def test_importing_schemas_and_package_loads_no_torch():
    code = ("import sys, edgeflow.data.schemas, edgeflow.data; "
            "bad = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'sklearn', 'mnist1d') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
