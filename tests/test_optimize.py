"""``optimize``: the value a Hydra sweeper optimizes is configurable (validated without torch)."""

from __future__ import annotations

import math

import pytest

import edgeflow
from edgeflow.config import Objective, validate
from edgeflow.core.errors import ConfigError
from edgeflow.pipeline import objective_value

METRICS = {"evaluate/test_acc": 97.0, "prune/test_acc": 95.5, "profile/latency_ms": 1.7}


def _validate(*overrides: str):
    return validate(edgeflow.compose(["recipe=quickstart", *overrides]))


def test_default_is_the_last_test_acc() -> None:
    assert _validate().optimize is None
    assert objective_value(METRICS, None) == 95.5
    assert objective_value({"export/onnx_bytes": 1.0}, None) is None


def test_objectives_parse_and_return_one_value_or_a_list() -> None:
    one = _validate("optimize=[evaluate/test_acc:max]").optimize
    assert one == [Objective("evaluate/test_acc", "max")]
    assert objective_value(METRICS, one) == 97.0
    two = _validate("optimize=[evaluate/test_acc,profile/latency_ms:min]").optimize
    assert two == [Objective("evaluate/test_acc", "max"), Objective("profile/latency_ms", "min")]
    assert objective_value(METRICS, two) == [97.0, 1.7]
    missing = objective_value(METRICS, [Objective("profile/energy_uj", "min")])
    assert math.isnan(missing)


@pytest.mark.parametrize("value, message", [
    ("[evaluate/test_acc:up]", "optimize.0: must be '<stage>/<metric>:max|min', got 'evaluate/test_acc:up'"),
    ("[test_acc]", "optimize.0: must be '<stage>/<metric>:max|min', got 'test_acc'"),
    ("[nas/val_acc:max]", "optimize.0: names stage 'nas', which is not in this recipe"),
    ("[]", "optimize: must be a list of"),
])
def test_bad_objectives_are_one_line_config_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _validate(f"optimize={value}")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
