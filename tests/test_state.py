"""The State between stages: immutability, artifacts bound to model versions, save/load without
unpickling code; the StageContext's child runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from edgeflow.methods import pruning as P
from edgeflow.methods.quantization import QuantConfig, calibrate, fold_simulated_bn, freeze_observers, quantize_model
from edgeflow.models import ZOO, build_model
from edgeflow.state import StageContext, State, child_seed, model_version
from edgeflow.tracking import MlflowRun

from conftest import tracking_uri

SHAPES = {"mlp": (1, 8, 8), "cnn": (1, 8, 8), "resnet8": (3, 32, 32), "dscnn": (1, 49, 10),
          "mobilenet_v1": (3, 32, 32), "autoencoder": (1, 40), "tcn": (1, 40)}


def _batches(shape: tuple[int, ...], n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, *shape, generator=g), torch.zeros(8, dtype=torch.long)) for _ in range(n)]


def _roundtrip(state: State, folder: Path) -> State:
    state.save(folder)
    for pt in folder.glob("*.pt"):  # plain tensors only: loadable without unpickling code
        torch.load(pt, weights_only=True)
    return State.load(folder)


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    a.eval()
    b.eval()
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_state_is_immutable_and_history_is_not_shared() -> None:
    first = State.of(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), 10)
    other = build_model("cnn", (1, 8, 8), 10)
    second = first.with_model(other).with_reference(test_acc=90.0).with_history("train")
    assert first.model is not other and second.model is other
    assert first.history == () and second.history == ("train",)
    assert dict(first.reference_metrics) == {} and second.with_reference(test_acc=10.0).reference_metrics["test_acc"] == 90.0
    with pytest.raises(TypeError):
        second.reference_metrics["test_acc"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        second.history = ()  # type: ignore[misc]
    teacher = first.with_model(build_model("mlp", (1, 8, 8), 10), name="teacher")
    assert set(teacher.models) == {"model", "teacher"} and set(first.models) == {"model"}


def test_artifact_is_returned_only_while_its_model_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    state = State.of(build_model("cnn", (1, 8, 8), 10), (1, 8, 8), 10).with_artifact("onnx", path)
    assert state.artifact("onnx") == path
    state.model.eval()  # train/eval mode is not a new version
    assert state.artifact("onnx") == path
    changed = state.copy_model()
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert state.with_model(changed).artifact("onnx") is None
    P.magnitude_prune(state.model, 0.3)  # a mask changes the version too
    assert state.artifact("onnx") is None
    assert state.artifact("missing") is None


@pytest.mark.parametrize("name", sorted(ZOO))
def test_save_load_round_trips_pruned_and_quantized_zoo_models(name: str, tmp_path: Path) -> None:
    shape = SHAPES[name]
    model = build_model(name, shape, 10)
    P.magnitude_prune(model, 0.6)
    qmodel = quantize_model(model, shape, QuantConfig(weight_bits=4, act_bits=8))
    calibrate(qmodel, _batches(shape), 3)
    freeze_observers(qmodel)
    state = State.of(qmodel, shape, 10, reference_metrics={"test_acc": 97.5}).with_model(model, "float")
    state = state.with_artifact("onnx", tmp_path / "a.onnx").with_history("ptq")
    loaded = _roundtrip(state, tmp_path / "state")
    assert _same_outputs(loaded.model, qmodel, shape) and _same_outputs(loaded.models["float"], model, shape)
    assert model_version(loaded.model) == model_version(qmodel)
    assert P.global_sparsity(loaded.models["float"]) == pytest.approx(P.global_sparsity(model))
    assert loaded.history == ("ptq",) and loaded.reference_metrics == {"test_acc": 97.5}
    assert loaded.artifacts["onnx"] == state.artifacts["onnx"]


@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v1", "tcn"])
def test_save_load_round_trips_thinned_then_quantized_models(name: str, tmp_path: Path) -> None:
    shape = SHAPES[name]
    thin, _ = P.structured_prune(build_model(name, shape, 10), shape, 0.5)
    qmodel = quantize_model(thin, shape, QuantConfig(), bn="simulate")
    calibrate(qmodel, _batches(shape), 2)
    fold_simulated_bn(qmodel)
    freeze_observers(qmodel)
    loaded = _roundtrip(State.of(qmodel, shape, 10), tmp_path)
    assert _same_outputs(loaded.model, qmodel, shape)
    assert model_version(loaded.model) == model_version(qmodel)


def test_load_refuses_pickled_code(tmp_path: Path) -> None:
    State.of(build_model("mlp", (1, 8, 8), 10), (1, 8, 8), 10).save(tmp_path)
    (tmp_path / "model.pt").write_bytes(pickle.dumps(build_model("mlp", (1, 8, 8), 10)))
    with pytest.raises(pickle.UnpicklingError):
        State.load(tmp_path)


def test_a_model_without_blueprint_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no blueprint"):
        State.of(torch.nn.Linear(2, 2), (2,), 2).save(tmp_path)


def test_child_context_runs_nest_under_the_parent_run(tmp_path: Path) -> None:
    uri = tracking_uri(tmp_path)
    parent = MlflowRun.start(uri, "nested", None, {"edgeflow.recipe": "nas"})
    ctx = StageContext(name="nas", out_dir=tmp_path / "nas", seed=3, tracker=parent, trainer_cfg=None,
                       data_source=lambda: None, hardware_source=lambda: None)
    with ctx.child("trial_0") as sub:
        sub.log_metrics({"val_acc": 91.0})
        assert sub.out_dir == tmp_path / "nas" / "trial_0" and sub.out_dir.is_dir()
    with ctx.child("trial_1") as other:
        assert sub.seed == child_seed(3, "trial_0") != other.seed
    with pytest.raises(RuntimeError), ctx.child("trial_2") as failing:
        raise RuntimeError("diverged")
    parent.finish()

    client = MlflowClient(uri)
    child = client.get_run(sub.tracker.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child.data.tags["edgeflow.recipe"] == "nas" and child.data.tags["edgeflow.parent_stage"] == "nas"
    assert child.info.run_name == "nas/trial_0" and child.info.status == "FINISHED"
    assert child.data.metrics == {"nas/val_acc": 91.0}
    assert client.get_run(failing.tracker.run_id).info.status == "FAILED"
    children = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert {r.info.run_name for r in children} == {"nas/trial_0", "nas/trial_1", "nas/trial_2"}


def test_context_records_what_a_stage_reads(tmp_path: Path) -> None:
    ctx = StageContext(name="s", out_dir=tmp_path, seed=0, tracker=None, trainer_cfg="T",
                       data_source=lambda: "D", hardware_source=lambda: "H")
    assert ctx.reads == set()
    assert ctx.data == "D" and ctx.reads == {"dataset"}
    assert ctx.trainer == "T" and ctx.hardware == "H" and ctx.reads == {"dataset", "trainer", "hardware"}
