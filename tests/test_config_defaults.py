"""One source of defaults: every group's YAML repeats its schema's defaults, key for key.

The dataclass schema defines each default; ``conf/<group>/<option>.yaml`` repeats it so that every
key shows in ``edgeflow --help`` and can be overridden. These tests fail when a YAML file lacks a
schema field, has a key the schema lacks, or gives a value other than the schema's default.
Interpolated YAML values (``${dataset.input_shape}``, ``${name}``, ``${oc.env:...}``) are derived
from other keys and are exempt from the value check; fields without a default (``MISSING``) too.
Hardware targets are data, not defaults: only their keys are checked. The dataset group has the
same check in ``tests/test_data_schemas.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import MISSING, OmegaConf

from edgeflow.config import stage_kinds, stage_module
from edgeflow.hardware.schema import HardwareConfig
from edgeflow.models.schemas import MODEL_SCHEMAS
from edgeflow.tracking.schema import TrackingConfig
from edgeflow.training.schema import TrainerConfig

from conftest import ROOT

CONF = ROOT / "conf"


def schema_defaults(schema: type) -> dict[str, Any]:
    """Field name → default of every init field of ``schema`` (``MISSING`` where it has none)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = MISSING
    return out


def yaml_values(path: Path) -> tuple[dict[str, Any], set[str]]:
    """The keys and unresolved values of ``path`` and the set of keys whose value is interpolated."""
    node = OmegaConf.load(path)
    interpolated = {key for key in node if OmegaConf.is_interpolation(node, key)}
    return OmegaConf.to_container(node, resolve=False), interpolated


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (a bool never equals an int; 1 and 1.0 are equal numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def mismatches(path: Path, schema: type, *, check_values: bool = True) -> list[str]:
    """Every disagreement between ``path`` and ``schema``, one line each."""
    defaults = schema_defaults(schema)
    values, interpolated = yaml_values(path)
    problems = [f"{key}: in {schema.__name__} but not in the YAML" for key in defaults if key not in values]
    problems += [f"{key}: in the YAML but not a field of {schema.__name__}" for key in values if key not in defaults]
    if check_values:
        for key, value in values.items():
            default = defaults.get(key, MISSING)
            if key in interpolated or default is MISSING or key not in defaults:
                continue
            if not same(value, default):
                problems.append(f"{key}: YAML {value!r} != {schema.__name__} default {default!r}")
    return problems


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_stage_kind_has_a_yaml() -> None:
    assert sorted(p.stem for p in (CONF / "stage").glob("*.yaml")) == sorted(stage_kinds())


@pytest.mark.parametrize("kind", sorted(stage_kinds()))
def test_stage_yaml_equals_schema_defaults(kind: str) -> None:
    path = CONF / "stage" / f"{kind}.yaml"
    assert mismatches(path, stage_module(kind).Config) == [], rel(path)


@pytest.mark.parametrize("path", sorted((CONF / "model").glob("*.yaml")), ids=lambda p: p.stem)
def test_model_yaml_equals_schema_defaults(path: Path) -> None:
    assert mismatches(path, MODEL_SCHEMAS[path.stem]) == [], rel(path)


@pytest.mark.parametrize("path, schema", [(CONF / "trainer" / "default.yaml", TrainerConfig),
                                          (CONF / "tracking" / "default.yaml", TrackingConfig)],
                         ids=["trainer", "tracking"])
def test_default_group_yaml_equals_schema_defaults(path: Path, schema: type) -> None:
    assert mismatches(path, schema) == [], rel(path)


@pytest.mark.parametrize("path", sorted((CONF / "hardware").glob("*.yaml")), ids=lambda p: p.stem)
def test_hardware_yaml_has_every_schema_key(path: Path) -> None:
    assert mismatches(path, HardwareConfig, check_values=False) == [], rel(path)


def test_a_drifted_default_is_reported(tmp_path: Path) -> None:
    """The check itself: a changed value, a missing key and an unknown key each give one line."""
    schema = stage_module("prune").Config
    lr = schema_defaults(schema)["lr"]
    values, _ = yaml_values(CONF / "stage" / "prune.yaml")
    values["lr"] = lr * 10
    del values["patience"]
    values["bogus"] = 1
    path = tmp_path / "prune.yaml"
    OmegaConf.save(OmegaConf.create(values), path)
    assert sorted(mismatches(path, schema)) == sorted([
        f"lr: YAML {lr * 10!r} != Config default {lr!r}",
        "patience: in Config but not in the YAML",
        "bogus: in the YAML but not a field of Config",
    ])
