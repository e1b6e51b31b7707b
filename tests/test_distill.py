"""Distillation: Hinton's loss on exact values; the distill stage on MNIST-1D (hint loss, a student
of < 1/4 of the teacher's parameters that continues down the pipeline, the teacher kept; a teacher
from an MLflow run, downloaded once, distilled into a quantized student that exports to QDQ ONNX);
one-line errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.methods.distillation import kd_loss
from edgeflow.models import build_model
from edgeflow.pipeline import prepare
from edgeflow.state import State

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]


def test_kd_loss_equals_hintons_formula() -> None:
    s = torch.tensor([[2.0, 0.0, -1.0]])
    t = torch.tensor([[1.0, 1.0, 0.0]])
    y = torch.tensor([0])
    temperature = 2.0
    ps, pt = F.softmax(s / temperature, 1)[0], F.softmax(t / temperature, 1)[0]
    kl = sum(float(pt[i] * math.log(pt[i] / ps[i])) for i in range(3))
    ce = -math.log(float(F.softmax(s, 1)[0, 0]))
    assert float(kd_loss(s, t, y, temperature, 1.0)) == pytest.approx(4 * kl, rel=1e-5)
    assert float(kd_loss(s, t, y, temperature, 0.0)) == pytest.approx(ce, rel=1e-6)
    assert float(kd_loss(s, t, y, temperature, 0.25)) == pytest.approx(0.25 * 4 * kl + 0.75 * ce, rel=1e-5)
    assert float(kd_loss(t, t, y, 3.0, 1.0)) == pytest.approx(0.0, abs=1e-7)   # a student equal to its teacher


def test_distill_into_a_small_student_then_a_quantized_one(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = edgeflow.run(edgeflow.compose([                       # tracked: its final state goes to MLflow
        "recipe=distill_tcn", "trainer.progress_bar=false", "~stages.export", "stages.train.max_epochs=4",
        "stages.distill.max_epochs=6",
        "+stages.distill.hints={features.3: features.3}"]))
    m = first.metrics
    assert m["distill/param_ratio"] < 0.25 and m["distill/student_params"] == 1154        # tcn [8, 8, 8, 8]
    assert m["distill/teacher_acc"] == pytest.approx(m["evaluate/test_acc"])
    assert m["distill/test_acc"] > 70 and m["distill/acc_drop"] == pytest.approx(m["distill/teacher_acc"] - m["distill/test_acc"])
    model, teacher = first.state.model, first.state.models["teacher"]
    assert sum(p.numel() for p in model.parameters()) == 1154 and not hasattr(model, "_kd_adapters")
    loaded = State.load(first.run_dir / "state")                                          # student and teacher
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        assert torch.equal(loaded.model.eval()(x), model.eval()(x))
        assert torch.equal(loaded.models["teacher"].eval()(x), teacher.eval()(x))
    # a teacher from that MLflow run (its final model: the student), downloaded once though the early check,
    # the stage's check and its run all read it; a quantized student (QAT), exported as int8 QDQ, run in onnxruntime
    from mlflow.tracking import MlflowClient

    downloads, download = [], MlflowClient.download_artifacts
    monkeypatch.setattr(MlflowClient, "download_artifacts", lambda client, run_id, path, *args, **kwargs: (
        downloads.append((run_id, path)), download(client, run_id, path, *args, **kwargs))[1])
    second = edgeflow.run(edgeflow.compose([
        "recipe=distill_tcn", *QUIET, "~stages.train", "~stages.evaluate", "stages.distill.max_epochs=3",
        f"stages.distill.teacher=runs:/{first.mlflow_run_id}", "+stages.distill.qat={weight_bits: 8}"]))
    assert downloads == [(first.mlflow_run_id, "state")]
    m2 = second.metrics
    assert m2["distill/teacher_acc"] == pytest.approx(m["distill/test_acc"])              # the saved model
    assert m2["distill/test_acc"] > 60
    from edgeflow.methods.quantization import is_quantized

    assert is_quantized(second.model) and m2["export/ort_top1_agreement"] >= 99.0


@pytest.mark.parametrize("overrides, message", [
    (["stages.distill.student.name=cnn", "~stages.distill.student.channels"],
     "stages.distill.student.name: cnn expects input_shape (C, H, W), but the dataset gives [1, 40]"),
    (["stages.distill.alpha=1.5"], "stages.distill.alpha: must be a finite float in [0, 1], got 1.5"),
    (["+stages.distill.hints={features.9: features.3}"], "stages.distill.hints: 'features.9' is not a module path of the student"),
    (["+stages.distill.student.chanels=[4]"], "stages.distill.student.chanels: unknown option of this model"),
])
def test_bad_distill_input_is_one_line_before_training(workdir: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        prepare(edgeflow.compose(["recipe=distill_tcn", *QUIET, *overrides]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_teacher_of_another_class_count_is_refused(workdir: Path) -> None:
    folder = State.of(build_model("tcn", (1, 40), 5), (1, 40), 5).save(workdir / "five_classes")
    with pytest.raises(ConfigError) as err:
        prepare(edgeflow.compose(["recipe=distill_tcn", *QUIET, f"stages.distill.teacher={folder}"]))
    assert str(err.value) == ("stages.distill.teacher: gives (5,) outputs per sample but the dataset has 10 classes; "
                              "distil from a teacher of this dataset")
    weights = workdir / "w.pt"
    torch.save(build_model("tcn", (1, 40), 10).state_dict(), weights)
    with pytest.raises(ConfigError, match=r"^stages.distill.teacher: .*w.pt is a weights file"):
        prepare(edgeflow.compose(["recipe=distill_tcn", *QUIET, f"stages.distill.teacher={weights}"]))
