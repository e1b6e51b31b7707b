"""One model, many targets in one run: the ``hardware`` option of ``analyze`` and ``profile``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError
from edgeflow.hardware import load
from edgeflow.models import build_model
from edgeflow.runtime import profiler
from edgeflow.stages import analyze
from edgeflow.stages._targets import HARDWARE_METRICS
from edgeflow.state import StageContext, State
from edgeflow.tracking import NullRun

from conftest import tracking_uri

TARGETS = ["cortex_m4", "gap9", "rpi4"]
AVAILABLE = "cortex_m4, cortex_m7, gap9, generic_45nm, rpi4"
TINY = ["recipe=ptq_int8", "stages.train.max_epochs=2", "trainer.progress_bar=false", "seed=3",
        "stages.profile.max_samples=128", "stages.analyze.plot=false", "stages.analyze_int8.plot=false"]


class Recorder(NullRun):
    """A tracker that remembers where artifacts go."""

    def __init__(self) -> None:
        self.artifacts: list[tuple[str, str | None]] = []

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.artifacts.append((Path(path).name, folder))


def context(tmp_path: Path, name: str = "analyze", tracker: NullRun | None = None) -> StageContext:
    return StageContext(name=name, out_dir=tmp_path, seed=0, tracker=tracker or NullRun(), trainer_cfg=None,
                        data_source=lambda: None, hardware_source=cache(lambda: load("cortex_m4")),
                        target_source=cache(load))


@pytest.mark.parametrize(("override", "error"), [
    ("stages.profile.hardware=[cortex_m4,gap10]", f"stages.profile.hardware: unknown target 'gap10'; available: {AVAILABLE}"),
    ("stages.analyze.hardware=cortex-m4", f"stages.analyze.hardware: unknown target 'cortex-m4'; available: {AVAILABLE}"),
    ("stages.analyze.hardware=[gap9,rpi4,gap9]", "stages.analyze.hardware: lists gap9 more than once"),
    ("stages.profile.hardware=3", "stages.profile.hardware: must be null, a target name or a list of target names "
                                  f"({AVAILABLE}), got 3"),
])
def test_target_names_are_checked_at_validation(override: str, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(edgeflow.compose(["recipe=ptq_int8", override]))
    assert str(info.value) == error


@pytest.mark.parametrize(("override", "value"), [
    ("stages.profile.hardware=null", None), ("stages.profile.hardware=[]", None),
    ("stages.profile.hardware=gap9", "gap9"), ("stages.profile.hardware=[gap9,rpi4]", ["gap9", "rpi4"]),
])
def test_target_option_forms(override: str, value: object) -> None:
    assert validate(edgeflow.compose(["recipe=ptq_int8", override])).stages["profile"].hardware == value


def test_context_shares_the_run_target_and_records_reads(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    gap9 = ctx.target("gap9")
    assert gap9.name == "gap9" and ctx.target("gap9") is gap9 and ctx.reads == set()
    assert ctx.target("cortex_m4") is ctx.hardware is ctx.target() and ctx.reads == {"hardware"}


def test_files_of_targets_go_to_their_own_artifact_folders(tmp_path: Path) -> None:
    tracker = Recorder()
    ctx = context(tmp_path, "profile", tracker)
    (tmp_path / "gap9").mkdir()
    ctx.log_artifact(tmp_path / "profile_layers.csv")
    ctx.log_artifact(tmp_path / "gap9" / "profile_layers.csv")
    assert tracker.artifacts == [("profile_layers.csv", "profile"), ("profile_layers.csv", "profile/gap9")]


def test_analyze_on_listed_targets_equals_each_target_alone(tmp_path: Path) -> None:
    state = State.of(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), 10)
    many = analyze.run(analyze.Config(hardware=["gap9", "rpi4"]), state, ctx := context(tmp_path / "many"))
    assert ctx.reads == set()  # the run's target (cortex_m4) was not used
    alone = {t: analyze.run(analyze.Config(hardware=t), state, context(tmp_path / t)).metrics for t in ("gap9", "rpi4")}
    assert set(HARDWARE_METRICS) < set(alone["gap9"]) and {"macs", "weight_bits"} < set(alone["gap9"])
    assert set(many.metrics) == ({k for k in alone["gap9"] if k not in HARDWARE_METRICS}
                                 | {f"{t}/{m}" for t in alone for m in HARDWARE_METRICS})
    for target, metrics in alone.items():
        for key, value in metrics.items():
            assert many.metrics[f"{target}/{key}" if key in HARDWARE_METRICS else key] == value, (target, key)
        assert many.artifacts[f"{target}/layers_csv"] == tmp_path / "many" / target / "layers.csv"
        assert many.artifacts[f"{target}/layers_csv"].read_text() == (tmp_path / target / "layers.csv").read_text()
        assert many.artifacts[f"{target}/layers_png"].is_file()


def test_three_target_profile_in_one_run_equals_three_runs(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluations = []
    evaluate = profiler.evaluate
    monkeypatch.setattr(profiler, "evaluate", lambda *a, **kw: evaluations.append(1) or evaluate(*a, **kw))
    multi = edgeflow.run(edgeflow.compose([*TINY, f"tracking.uri={tracking_uri(workdir)}",
                                           f"stages.profile.hardware=[{','.join(TARGETS)}]"]))
    assert len(evaluations) == 1  # accuracy and agreement once, not once per target
    for target in TARGETS:
        alone = edgeflow.run(edgeflow.compose([*TINY, "tracking.enabled=false", f"hardware={target}",
                                               "stages.profile.plots=false"])).metrics
        metrics = {k.removeprefix("profile/") for k in alone if k.startswith("profile/") and k != "profile/wall_s"}
        assert set(HARDWARE_METRICS) < metrics and {"macs", "test_acc", "agreement", "acc_drop"} < metrics
        expected = {f"profile/{m}" for m in metrics - set(HARDWARE_METRICS)} | {"profile/wall_s"}
        expected |= {f"profile/{t}/{m}" for t in TARGETS for m in HARDWARE_METRICS}
        assert {k for k in multi.metrics if k.startswith("profile/")} == expected
        for metric in metrics:
            name = f"profile/{target}/{metric}" if metric in HARDWARE_METRICS else f"profile/{metric}"
            assert multi.metrics[name] == alone[f"profile/{metric}"], (target, metric)
    files = {a.path for t in TARGETS for a in MlflowClient(tracking_uri(workdir)).list_artifacts(
        multi.mlflow_run_id, f"profile/{t}")}
    assert files == {f"profile/{t}/{f}" for t in TARGETS
                     for f in ("profile_layers.csv", "profile_layers.png", "profile_arena.png")}
    assert multi.artifacts["profile/gap9/profile_layers_csv"] == str(multi.run_dir / "profile" / "gap9" / "profile_layers.csv")
