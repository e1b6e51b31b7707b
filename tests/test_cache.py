"""The stage cache: a run whose stage prefix matches an earlier run's reuses it with identical
metrics (and MLflow records), shares target-independent stages across ``hardware=``, survives an
unwritable folder and corrupt entries, and keeps to its size limit. Real runs of tiny recipes."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import edgeflow
from conftest import tracking_uri
from edgeflow.cache.store import CacheStore
from edgeflow.tracking.artifact_links import local_root
from tasks.cache_app import main as cache_main

#: quickstart in seconds: every stage runs, one epoch each
TINY = ["recipe=quickstart", "stages.train.max_epochs=1", "stages.prune.max_epochs=1", "stages.prune.end=0",
        "stages.qat.max_epochs=1", "stages.qat.freeze_observers_epoch=0", "trainer.progress_bar=false"]
SMALL = ["recipe=train_float", "stages.train.max_epochs=1", "trainer.progress_bar=false", "tracking.enabled=false"]


def final(metrics: dict[str, float]) -> dict[str, float]:
    """Every metric but wall times (which a cache hit changes by design)."""
    return {k: v for k, v in metrics.items() if not k.endswith("/wall_s")}


@cache
def tiny_reference() -> dict[str, float]:
    """The final metrics of ``TINY`` on cortex_m4 computed from scratch (no cache, no MLflow), once per session."""
    return final(edgeflow.run(edgeflow.compose([*TINY, "cache.enabled=false", "tracking.enabled=false"])).metrics)


def cached_stages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("stage ")
            and " cached (computed by run " in r.getMessage()]


def test_target_sweep_shares_target_free_stages_with_identical_metrics_and_history(
        workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "edgeflow")
    first = edgeflow.run(edgeflow.compose([*TINY, "hardware=gap9"]))
    assert cached_stages(caplog) == []
    caplog.clear()
    second = edgeflow.run(edgeflow.compose([*TINY, "hardware=cortex_m4"]))
    # analyze and profile cost the model on the target; every other stage is the same computation
    assert cached_stages(caplog) == ["train", "evaluate", "prune", "qat", "export"]
    assert final(second.metrics) == tiny_reference()  # as computed from scratch
    assert second.metrics["profile/latency_ms"] != first.metrics["profile/latency_ms"]
    assert second.state.artifact("onnx") == second.run_dir / "export" / "model.onnx"  # files copied in, paths moved
    assert (second.run_dir / "train" / "best.ckpt").is_file()

    client = MlflowClient(tracking_uri(workdir))
    run = client.get_run(second.mlflow_run_id)
    assert run.data.tags["edgeflow.cached.train"] == first.mlflow_run_id
    assert "edgeflow.cached.profile" not in run.data.tags
    for metric in ("train/val_acc", "train/val_loss", "train/lr"):  # the per-epoch series are replayed
        replayed = [(m.step, m.value) for m in client.get_metric_history(second.mlflow_run_id, metric)]
        assert replayed and replayed == [(m.step, m.value) for m in client.get_metric_history(first.mlflow_run_id, metric)]
    assert {k: run.data.metrics[k] for k in final(second.metrics)} == final(second.metrics)
    assert _artifacts(client, second.mlflow_run_id)["export/model.onnx"].stat().st_ino == \
        _artifacts(client, first.mlflow_run_id)["export/model.onnx"].stat().st_ino  # a hit's file: linked

    # the first run again: every stage hits, and its artifacts equal to the first run's are hard links
    # to them (a local store), so it writes only what is its own; it still holds every artifact
    caplog.clear()
    third = edgeflow.run(again := edgeflow.compose([*TINY, "hardware=gap9"]))
    assert cached_stages(caplog) == list(again.stages)
    ours, theirs = _artifacts(client, third.mlflow_run_id), _artifacts(client, first.mlflow_run_id)
    assert set(ours) == set(theirs)
    linked = {path for path, file in ours.items() if file.stat().st_ino == theirs[path].stat().st_ino}
    written = sorted(set(ours) - linked)
    assert written == ["config.yaml", "model/MLmodel", "state/state.json", "summary.json"]  # names, times, paths
    assert sum(ours[path].stat().st_size for path in written) < 0.1 * sum(f.stat().st_size for f in ours.values())
    onnx = Path(client.download_artifacts(third.mlflow_run_id, "model/model.onnx", str(workdir / "download")))
    assert onnx.read_bytes() == (third.run_dir / "export" / "model.onnx").read_bytes()


def _artifacts(client: MlflowClient, run_id: str) -> dict[str, Path]:
    """The files of run ``run_id`` in its local artifact folder, by artifact path."""
    root = local_root(client.get_run(run_id).info.artifact_uri)
    return {file.relative_to(root).as_posix(): file for file in root.rglob("*") if file.is_file()}


def test_unwritable_folder_warns_once_and_runs_uncached(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (workdir / "a_file").write_text("not a folder")
    caplog.set_level(logging.INFO, "edgeflow")
    result = edgeflow.run(edgeflow.compose([*SMALL, f"cache.dir={workdir / 'a_file' / 'cache'}"]))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "is not writable" in warnings[0] and "running without the cache" in warnings[0]
    assert result.metrics["evaluate/test_acc"] > 0


def test_corrupt_entries_are_recomputed_never_a_crash(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = edgeflow.run(edgeflow.compose(SMALL))
    store = CacheStore(workdir / "cache")
    entries = {e.meta["stage"]: e for e in store.entries()}
    assert set(entries) == {"train", "evaluate", "export"}
    (entries["train"].path / "state" / "model.pt").write_bytes(b"garbage")  # torch cannot read it
    (entries["export"].path / "meta.json").write_text("{not json")            # nor json this
    caplog.set_level(logging.INFO, "edgeflow")
    second = edgeflow.run(edgeflow.compose(SMALL))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and all("unreadable" in w and "recomputing" in w for w in warnings), warnings
    assert final(second.metrics) == final(first.metrics)
    assert cached_stages(caplog) == ["evaluate"]  # train recomputed to the same model: evaluate still matches
    caplog.clear()
    edgeflow.run(edgeflow.compose(SMALL))  # the recomputed entries were stored again
    assert cached_stages(caplog) == ["train", "evaluate", "export"]


def test_disabled_cache_reads_and_writes_nothing(workdir: Path) -> None:
    edgeflow.run(edgeflow.compose([*SMALL, "cache.enabled=false"]))
    assert not (workdir / "cache").exists()


def test_size_limit_list_and_clear(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edgeflow.run(edgeflow.compose([*SMALL, "cache.max_size_mb=0.05"]))  # 50 KiB: one small entry at most
    store = CacheStore(workdir / "cache")
    assert 0 < store.size() <= 0.05 * 2**20 or len(store.entries()) <= 1
    assert len(store.entries()) < 3
    cache_main(["list"])
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"{len(store.entries())} entr") and str(workdir / "cache") in out[-1]
    cache_main(["clear"])
    assert capsys.readouterr().out.startswith(f"removed {len(out) - 1} entr")
    assert store.entries() == []
    with pytest.raises(SystemExit) as code:
        cache_main(["prune"])
    assert code.value.code == 2


def test_bad_cache_config_is_a_config_error() -> None:
    from edgeflow.config import validate
    from edgeflow.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^cache.max_size_mb: must be a finite number of MB"):
        validate(edgeflow.compose(["recipe=quickstart", "cache.max_size_mb=-1"]))
    with pytest.raises(ConfigError, match=r"^cache.size: unknown key"):
        validate(edgeflow.compose(["recipe=quickstart", "+cache.size=1"]))
