"""Validation knows numbers (issue 10 §4): non-finite and absurd values are one-line config errors,
and every numeric bound is tested at its edge (just inside passes, just outside fails)."""

from __future__ import annotations

import pytest

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError, is_finite, require_filename

BASE = ["recipe=quickstart"]

# the values of issue 10, "What was measured" §4 -> the exact one-line error of validate
MEASURED = [
    ("stages.train.lr=inf", "stages.train.lr: must be a finite float in (0, 10], got inf"),
    ("stages.train.max_epochs=99999999999999999999",
     "stages.train.max_epochs: must be an integer <= 100000, got 99999999999999999999"),
    ("stages.train.weight_decay=inf", "stages.train.weight_decay: must be a finite float in [0, 1], got inf"),
    ("seed=1.5", "seed: must be an integer in [0, 4294967295], got 1.5"),
    ("seed=abc", "seed: must be an integer in [0, 4294967295], got 'abc'"),
    ("seed=-1", "seed: must be an integer in [0, 4294967295], got -1"),
    ("hardware.clock_hz=inf", "hardware.clock_hz: must be a finite number > 0 (Hz), got inf"),
    ("hardware.mac_per_cycle.int8=inf", "hardware.mac_per_cycle.int8: must be a finite number > 0, got inf"),
    ("stages.export.atol=inf", "stages.export.atol: must be a finite float in (0, 1], got inf"),
    ("stages.export.filename=../../../../ESCAPED.onnx",
     "stages.export.filename: must be a plain file name ending in .onnx (no path separators or ..), "
     "got '../../../../ESCAPED.onnx'"),
    ("stages.profile.filename=../x.onnx",
     "stages.profile.filename: must be a plain file name ending in .onnx (no path separators or ..), "
     "got '../x.onnx'"),
    ("stages.train.lr=nan", "stages.train.lr: must be a finite float in (0, 10], got nan"),
    ("stages.train.momentum=nan", "stages.train.momentum: must be in [0, 1), got nan"),
]


def error(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        validate(edgeflow.compose([*BASE, *overrides]))
    return str(info.value)


def passes(overrides: list[str]) -> None:
    validate(edgeflow.compose([*BASE, *overrides]))


@pytest.mark.parametrize("override, message", MEASURED)
def test_measured_values_are_one_line_errors(override: str, message: str) -> None:
    got = error([override])
    assert got == message
    assert "\n" not in got


# (key, value just inside, value just outside)
EDGES = [
    ("stages.train.max_epochs", "1", "0"),
    ("stages.train.max_epochs", "100000", "100001"),
    ("stages.train.lr", "1e-300", "0"),
    ("stages.train.lr", "10", "10.000001"),
    ("stages.train.lr", "10", "inf"),
    ("stages.train.lr", "10", "-inf"),
    ("stages.train.momentum", "0.999", "1.0"),
    ("stages.train.momentum", "0", "-1e-9"),
    ("stages.train.weight_decay", "0", "-1e-9"),
    ("stages.train.weight_decay", "1", "1.000001"),
    ("stages.train.patience", "0", "-1"),
    ("stages.train.patience", "100000", "100001"),
    ("stages.qat.max_epochs", "100000", "100001"),
    ("stages.qat.lr", "1e-300", "inf"),
    ("trainer.devices", "1", "0"),
    ("trainer.devices", "1024", "1025"),
    ("trainer.num_threads", "0", "-1"),
    ("trainer.num_threads", "1024", "1025"),
    ("stages.export.atol", "1e-12", "0"),
    ("stages.export.atol", "1", "1.0001"),
    ("stages.export.opset", "17", "16"),
    ("stages.export.opset", "21", "22"),
    ("stages.export.filename", "m.onnx", "sub/m.onnx"),
    ("stages.export.filename", "model.v2-int8.onnx", ".onnx"),
    ("stages.export.filename", "m.onnx", "m.onx"),
    ("stages.profile.filename", "m.onnx", "/tmp/m.onnx"),
    ("stages.profile.batch_size", "1", "0"),
    ("stages.profile.max_samples", "0", "-1"),
    ("hardware.clock_hz", "1e-3", "0"),
    ("hardware.clock_hz", "1e15", "inf"),
    ("hardware.clock_hz", "1e15", "nan"),
    ("hardware.flash_bytes", "1", "0"),
    ("hardware.flash_bytes", "1099511627776", "1099511627777"),
    ("hardware.ram_bytes", "1", "0"),
    ("hardware.ram_bytes", "1099511627776", "1099511627777"),
    ("hardware.mac_per_cycle.int8", "1e-6", "0"),
    ("hardware.mac_per_cycle.int8", "1e6", "inf"),
    ("hardware.energy_per_mac_pj.int8", "1e-6", "0"),
    ("hardware.energy_per_mac_pj.float32", "1e6", "inf"),
    ("hardware.layer_overhead_cycles", "0", "-1e-9"),
    ("hardware.layer_overhead_cycles", "1e9", "inf"),
    ("hardware.huffman_decode_cycles", "0", "-1e-9"),
    ("hardware.huffman_decode_cycles", "1e9", "inf"),
    ("hardware.sparse_mac_efficiency", "1", "1.0001"),
    ("hardware.sparse_mac_efficiency", "1e-9", "0"),
    ("stages.prune.exponent", "1e-9", "0"),
    ("stages.prune.exponent", "100", "inf"),
    ("stages.prune.energy_power", "0", "-1e-9"),
    ("stages.prune.energy_power", "100", "inf"),
    ("stages.prune.slimming_l1", "0", "-1e-9"),
    ("stages.prune.slimming_l1", "1", "inf"),
    ("stages.prune.slimming_epochs", "100000", "100001"),
    ("stages.prune.m", "1024", "1025"),
    ("stages.prune.channel_multiple", "1", "0"),
    ("stages.prune.channel_multiple", "1024", "1025"),
    ("stages.prune.frequency", "100000", "100001"),
    ("stages.prune.max_layer_sparsity", "0.999", "1"),
    ("stages.qat.freeze_bn_epoch", "-1", "-2"),
    ("stages.qat.freeze_bn_epoch", "100000", "100001"),
    ("stages.qat.freeze_observers_epoch", "100000", "100001"),
    ("stages.qat.calib_batches", "1", "0"),
    ("dataset.batch_size", "1", "0"),
    ("dataset.batch_size", "65536", "65537"),
    ("dataset.num_workers", "1024", "1025"),
    ("dataset.subset", "1", "1.0001"),
    ("dataset.subset", "1e-9", "0"),
    ("stages.profile.batch_size", "65536", "65537"),
    ("model.channels", "[16,65536]", "[16,65537]"),
]


@pytest.mark.parametrize("key, inside, outside", EDGES)
def test_numeric_bound_at_its_edge(key: str, inside: str, outside: str) -> None:
    passes([f"{key}={inside}"])
    message = error([f"{key}={outside}"])
    assert message.startswith(key + ":"), message
    assert "\n" not in message


def test_memory_level_bounds_at_their_edges() -> None:
    level = validate(edgeflow.compose(BASE)).hardware.weight_memory
    for key, inside, outside in ((f"hardware.bytes_per_cycle.{level}", "1e-6", "0"),
                                 (f"hardware.bytes_per_cycle.{level}", "1e6", "inf"),
                                 (f"hardware.energy_per_byte_pj.{level}", "0", "-1e-9"),
                                 (f"hardware.energy_per_byte_pj.{level}", "1e6", "inf")):
        passes([f"{key}={inside}"])
        assert error([f"{key}={outside}"]).startswith(key + ":")


@pytest.mark.parametrize("override", ["stages.train.max_epochs=1.5", "stages.export.opset=17.5",
                                      "stages.train.max_epochs=abc", "trainer.devices=true"])
def test_integers_are_really_integers(override: str) -> None:
    message = error([override])
    assert message.startswith(override.split("=")[0] + ":"), message
    assert "\n" not in message


def test_helpers() -> None:
    assert is_finite(0) and is_finite(-1.5) and is_finite(10**300)
    assert not any(is_finite(v) for v in (float("inf"), float("-inf"), float("nan"), 10**400, True, "1", None))
    require_filename("model.onnx", "filename", ".onnx")
    for bad in ("", ".onnx", "../m.onnx", "a/m.onnx", "a\\m.onnx", "..onnx", ".hidden.onnx", "m.txt", 3):
        with pytest.raises(ConfigError, match="^filename: must be a plain file name"):
            require_filename(bad, "filename", ".onnx")


@pytest.mark.parametrize("overrides, key, inside, outside", [
    (["dataset=synthetic"], "dataset.noise", "1e9", "inf"),
    (["recipe=ptq_int8"], "stages.ptq.num_batches", "1", "0"),
    (["recipe=ptq_int8"], "stages.ptq.num_batches", "100000", "100001"),
    (["model=mlp", "dataset=digits"], "model.hidden", "[65536]", "[65537]"),
    (["model=resnet8", "dataset=cifar10"], "model.filters", "[16,32,1]", "[16,32,0]"),
    (["model=resnet8", "dataset=cifar10"], "model.filters", "[16,32,65536]", "[16,32,65537]"),
    (["dataset=synthetic"], "dataset.separation", "0", "-1e-9"),
    (["dataset=synthetic"], "dataset.separation", "1e9", "inf"),
    (["model=resnet8", "dataset=cifar10"], "dataset.std", "[1,1,1e-9]", "[1,1,inf]"),
    (["model=resnet8", "dataset=cifar10"], "dataset.std", "[1,1,1e-9]", "[1,1,0]"),
    (["model=resnet8", "dataset=cifar10"], "dataset.mean", "[0,0,1e9]", "[0,0,nan]"),
    (["model=mobilenet_v1", "dataset=synthetic", "dataset.input_shape=[3,96,96]", "dataset.num_classes=2"],
     "model.alpha", "0.125", "0.124"),
    (["model=mobilenet_v1", "dataset=synthetic", "dataset.input_shape=[3,96,96]", "dataset.num_classes=2"],
     "model.alpha", "16", "inf"),
])
def test_group_bound_at_its_edge(overrides: list[str], key: str, inside: str, outside: str) -> None:
    passes([*overrides, f"{key}={inside}"])
    message = error([*overrides, f"{key}={outside}"])
    assert message.startswith(key + ":"), message
    assert "\n" not in message
