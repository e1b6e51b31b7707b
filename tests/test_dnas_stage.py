"""The dnas stage on real data: PIT on the MNIST-1D tcn (thinner model, metrics, artifacts, a state that
reloads), mixed precision on digits through export and the int8 runtime (bit-equal to onnxruntime,
profile flash = analysis + requantization parameters), and one-line config errors before training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError
from edgeflow.state import State

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]

MISTAKES = [
    (["recipe=dnas_pit_tcn", "+stages.dnas.targets.peak_ram_bytes=1000"],
     "stages.dnas.targets.peak_ram_bytes: is not a soft cost of the hardware model; allowed: params, macs, "
     "flash_bytes, latency_ms, energy_uj"),
    (["recipe=dnas_pit_tcn", "stages.dnas.strength=-0.5"],
     "stages.dnas.strength: must be a finite float >= 0, got -0.5"),
    (["recipe=dnas_mps_cnn", "stages.dnas.weight_bits=[2,4,9]"],
     "stages.dnas.weight_bits: must be a non-empty list of integers in 1..8, got [2, 4, 9]"),
    (["recipe=dnas_mps_cnn", "stages.dnas.act_bits=[1,8]"],
     "stages.dnas.act_bits: must be a non-empty list of integers in 2..8, got [1, 8]"),
    (["recipe=dnas_mps_cnn", "stages.dnas.cost=params"],
     "stages.dnas.cost: params does not depend on bit-widths; with method mps use flash_bytes, latency_ms, "
     "energy_uj or null"),
]
NOT_APPLICABLE = ("stages.dnas.search_dilation: applies to 'same'-padded, stride-1 float Conv1d layers with an odd "
                  "kernel >= 3; the model has none (its convs: features.0.0, features.2.0)")


@pytest.mark.parametrize(("overrides", "error"), MISTAKES, ids=[m[0][-1] for m in MISTAKES])
def test_bad_option_is_one_config_error(overrides: list[str], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(edgeflow.compose([*overrides, *QUIET]))
    assert str(info.value) == error


def test_dilation_search_on_a_2d_conv_stops_before_training(workdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        edgeflow.run(edgeflow.compose(["recipe=dnas_pit_tcn", "model=cnn", "dataset=digits", *QUIET]))
    assert str(info.value) == NOT_APPLICABLE
    assert list(workdir.rglob("train")) == []                  # no stage ran


def test_pit_thins_the_tcn_and_the_state_reloads(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([
        "recipe=dnas_pit_tcn", "~stages.qat", "~stages.export", "~stages.profile", *QUIET,
        "dataset.subset=0.3", "stages.train.max_epochs=4", "stages.dnas.search_epochs=2", "stages.dnas.strength=1",
        "stages.dnas.arch_optimizer=adam", "stages.dnas.arch_lr=0.04", "stages.dnas.max_epochs=1"]))
    m = r.metrics
    model = r.model
    assert m["dnas/params"] < m["dnas/params_before"]
    assert m["dnas/params_ratio"] == pytest.approx(m["dnas/params_before"] / m["dnas/params"])
    assert m["dnas/cost_params"] == m["dnas/params"]                    # found architecture's cost = exact count
    assert m["dnas/cost_latency_ms"] == pytest.approx(m["dnas/latency_ms"], rel=1e-9)
    assert m["dnas/test_acc"] >= 60.0 and m["dnas/acc_drop"] == pytest.approx(
        m["evaluate/test_acc"] - m["dnas/test_acc"])
    with open(r.artifacts["dnas/architecture"]) as f:
        rows = {row["layer"]: row for row in csv.DictReader(f)}
    for name, row in rows.items():
        layer = model.get_submodule(name)
        width = layer.out_features if name == "classifier" else layer.out_channels
        assert width == int(row["channels"])
        if row["kernel"]:
            assert (layer.kernel_size[0], layer.dilation[0]) == (int(row["kernel"]), int(row["dilation"]))
    assert Path(r.artifacts["dnas/architecture_png"]).stat().st_size > 1000
    loaded = State.load(r.run_dir / "state").model.eval()
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_mixed_precision_exports_and_runs_bit_equal_on_the_runtime(workdir: Path) -> None:
    import edgeflow.runtime as rt
    from edgeflow.export.ort import ort_session
    from edgeflow.hardware import analyze

    r = edgeflow.run(edgeflow.compose([
        "recipe=dnas_mps_cnn", *QUIET, "stages.train.max_epochs=4", "stages.dnas.search_epochs=2",
        "stages.dnas.calib_batches=2", "stages.dnas.max_epochs=1", "stages.profile.plots=false",
        "stages.profile.max_samples=128"]))
    m = r.metrics
    assert m["dnas/flash_bytes"] <= 2768 * 1.05 and 2 < m["dnas/weight_bits"] < 8  # DUCCIO target met, mixed
    assert m["dnas/cost_flash_bytes"] == m["dnas/flash_bytes"]
    assert m["profile/agreement"] == 100.0 and m["profile/max_lsb_diff"] == 0.0
    x = np.random.default_rng(0).normal(size=(32, 1, 8, 8)).astype(np.float32)
    sess = ort_session(r.artifacts["export/onnx"])
    assert np.array_equal(rt.load(r.artifacts["export/onnx"]).run(x)[0],
                          sess.run(None, {sess.get_inputs()[0].name: x})[0])
    # profile flash = analysis flash + an int32 multiplier and shift per output channel (16 + 32 + 10)
    # and one pair for the global average pool's rescale (README "How profile relates to analyze")
    assert m["dnas/flash_bytes"] == analyze(r.model, (1, 8, 8)).weight_bytes + 4 * (16 + 32 + 10)
    assert m["profile/flash_bytes"] == m["dnas/flash_bytes"] + 8 * (16 + 32 + 10) + 8
