"""End-to-end pipeline runs on real data, tracked in a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mlflow.tracking import MlflowClient

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.export import export_float
from edgeflow.models import ZOO, build_model

from conftest import tracking_uri

FAST = ["trainer.progress_bar=false"]


def test_quickstart_trains_digits_to_90_percent_and_tracks_everything(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=quickstart", "stages.train.max_epochs=6", *FAST,
                            f"tracking.uri={tracking_uri(workdir)}"])
    result = edgeflow.run(cfg)

    assert result.metrics["evaluate/test_acc"] >= 90.0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["mlflow_run_id"] == result.mlflow_run_id
    assert summary["metrics"]["evaluate/test_acc"] == pytest.approx(result.metrics["evaluate/test_acc"])
    onnx_path = Path(summary["artifacts"]["export/onnx"])
    assert onnx_path.exists()

    client = MlflowClient(tracking_uri(workdir))
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["stages.train.max_epochs"] == "6"
    assert run.data.metrics["evaluate/test_acc"] == pytest.approx(result.metrics["evaluate/test_acc"])
    history = client.get_metric_history(result.mlflow_run_id, "train/val_acc")
    assert len(history) == 6 and sorted(m.step for m in history) == list(range(6))
    artifacts = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"config.yaml", "summary.json", "export", "analyze", "profile"} <= artifacts
    analyze_files = {a.path for a in client.list_artifacts(result.mlflow_run_id, "analyze")}
    assert {"analyze/layers.csv", "analyze/layers.png"} <= analyze_files
    for key in ("macs", "params", "flash_bytes", "peak_ram_bytes", "latency_ms", "energy_uj", "fits"):
        assert f"analyze/{key}" in run.data.metrics, key
    assert run.data.metrics["analyze/macs"] == 83_264  # cnn on 1×8×8: 8·8·16·9 + 4·4·32·144 + 32·10

    # the int8 export runs on the bundled runtime exactly as in onnxruntime, over the whole test set
    assert result.metrics["profile/agreement"] >= 99.99
    assert result.metrics["profile/top1_agreement"] == 100.0
    assert result.metrics["prune/sparsity"] == pytest.approx(0.5, abs=0.01)


def test_same_seed_gives_same_metrics(workdir: Path) -> None:
    overrides = ["recipe=quickstart", "stages.train.max_epochs=2", "seed=7", *FAST, "tracking.enabled=false",
                 "cache.enabled=false"]  # both runs compute: a stage-cache hit would make them trivially equal
    first = edgeflow.run(edgeflow.compose(overrides)).metrics
    second = edgeflow.run(edgeflow.compose(overrides)).metrics
    for key in ("train/best_val_acc", "evaluate/test_acc", "evaluate/test_loss"):
        assert first[key] == second[key], key


def test_failing_run_is_marked_failed_with_the_error(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=quickstart", "model=mlp", "~model.name", "~model.hidden",
                            "+model._target_=failing_nets.FailsInEvaluation",
                            *FAST, f"tracking.uri={tracking_uri(workdir)}"])
    with pytest.raises(RuntimeError, match="evaluation diverged"):
        edgeflow.run(cfg)
    client = MlflowClient(tracking_uri(workdir))
    (experiment,) = [e for e in client.search_experiments() if e.name == "quickstart"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["edgeflow.error"] == "RuntimeError: evaluation diverged"
    (run_dir,) = (workdir / "outputs" / "quickstart").iterdir()
    assert (run_dir / "config.yaml").is_file() and (run_dir / "train").is_dir()  # partial outputs stay


def test_missing_data_is_a_config_error_before_any_run_exists(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=quickstart", "model=resnet8", "dataset=cifar10", f"dataset.root={workdir}/none",
                            *FAST, f"tracking.uri={tracking_uri(workdir)}"])
    with pytest.raises(ConfigError, match="cifar-10"):
        edgeflow.run(cfg)
    assert not (workdir / "outputs").exists()
    assert MlflowClient(tracking_uri(workdir)).get_experiment_by_name("quickstart") is None


@pytest.mark.parametrize("name, shape, classes", [
    ("mlp", (1, 8, 8), 10), ("cnn", (1, 8, 8), 10), ("resnet8", (3, 32, 32), 10), ("dscnn", (1, 49, 10), 12),
    ("mobilenet_v1", (3, 96, 96), 2), ("autoencoder", (640,), 10), ("tcn", (1, 40), 10),
])
def test_float_export_round_trip(tmp_path: Path, name: str, shape: tuple[int, ...], classes: int) -> None:
    assert name in ZOO
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    for module in model.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = export_float(model, shape, tmp_path / f"{name}.onnx")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 17
    x = torch.randn(3, *shape)
    got = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
