"""Stage ``distill``: knowledge distillation (Hinton et al. 2015) from a teacher into a zoo student.

The teacher is the model entering the stage (``teacher: null``), a saved state (``<run>/state`` or
the run folder) or an MLflow run's final state (``runs:/<run_id>``, looked up in the default store
``<home>/mlflow.db``). The student is built from ``student`` (a zoo model name and its options, the
input shape and classes the dataset's), trained with ``alpha · T² · KL(teacher ‖ student at T) +
(1 − alpha) · CE`` plus optional hint losses between named layers, and becomes the pipeline's
``model``; the teacher stays in the state as ``teacher``. With ``qat`` (``QuantConfig`` keys, e.g.
``{weight_bits: 8}``) the student is quantized first (BatchNorm simulated, folded at the end) and
distillation is its quantization-aware training.

Metrics: ``test_acc``, ``test_loss``, ``teacher_acc``, ``acc_drop`` (teacher − student, points),
``student_params``, ``teacher_params``, ``param_ratio`` (student / teacher), ``best_val_acc``,
``epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import ConfigError, require, require_finite
from edgeflow.stages._common import quant_config
from edgeflow.stages._zoo_spec import check_spec
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from torch import nn

    from edgeflow.state import StageContext, StageResult, State

TEACHER = "teacher"


@dataclass
class Config(TrainingStageConfig):
    """``student``: zoo model name and options; ``teacher``: null (the entering model), a state folder or
    ``runs:/<run_id>``; ``temperature`` T > 0; ``alpha`` in [0, 1] (weight of the soft loss);
    ``hints``: student module path → teacher module path; ``hint_weight`` ≥ 0; ``qat``: null or a
    mapping of quantization keys (the student trains quantized)."""

    kind: str = "distill"
    max_epochs: int = 30
    lr: float = 0.01
    student: Any = None
    teacher: Any = None
    temperature: float = 4.0
    alpha: float = 0.9
    hints: dict[str, str] = field(default_factory=dict)
    hint_weight: float = 1.0
    qat: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.student is not None, "student", "a zoo model mapping ({name: tcn, channels: [8, 8, 8, 8]})",
                self.student)
        check_spec(self.student, "student")
        if self.teacher is not None:
            _check_teacher_spec(self.teacher)
        require_finite(self.temperature, "temperature", "a finite float in (0, 100]", 0 < self.temperature <= 100)
        require_finite(self.alpha, "alpha", "a finite float in [0, 1]", 0 <= self.alpha <= 1)
        require_finite(self.hint_weight, "hint_weight", "a finite float >= 0", self.hint_weight >= 0)
        require(all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in self.hints.items()), "hints",
                "a mapping student module path -> teacher module path", self.hints)
        if self.qat is not None:
            quant_config(self.qat, "qat")


def _check_teacher_spec(spec: Any) -> None:
    from edgeflow.models.checkpoint import parse

    if not isinstance(spec, str):
        raise ConfigError("teacher", f"must be null (the model entering the stage), a saved state folder or "
                                     f"runs:/<run_id>, got {spec!r}")
    try:
        point = parse(spec)
    except ConfigError as err:
        raise ConfigError("teacher", err.message) from None
    if point.kind == "weights":
        raise ConfigError("teacher", f"{spec} is a weights file, which does not say how to build the teacher; "
                                     "give a saved state folder (<run>/state) or runs:/<run_id>")


def load_teacher(cfg: Config, state: State) -> nn.Module:
    """The teacher ``cfg.teacher`` names (the entering model when null); a ``ConfigError`` under
    ``teacher`` when it does not take the data's input shape or gives another class count."""
    import torch

    if cfg.teacher is None:
        teacher = state.model
    else:
        teacher = _saved_teacher(cfg.teacher)
    try:
        with torch.no_grad():
            was = teacher.training
            out = teacher.eval()(torch.zeros(2, *state.input_shape))
            teacher.train(was)
    except Exception as err:  # noqa: BLE001 - any shape error of a foreign model
        raise ConfigError("teacher", f"does not take the dataset's inputs {list(state.input_shape)}: "
                                     f"{str(err).splitlines()[0]}") from None
    if out.dim() != 2 or out.shape[1] != state.num_classes:
        raise ConfigError("teacher", f"gives {tuple(out.shape[1:])} outputs per sample but the dataset has "
                                     f"{state.num_classes} classes; distil from a teacher of this dataset")
    return teacher


def _saved_teacher(spec: str) -> nn.Module:
    from edgeflow.models.checkpoint import parse
    from edgeflow.state import State
    from edgeflow.tracking import resolve_uri
    from edgeflow.tracking.schema import TrackingConfig

    try:
        point = parse(spec)
        if point.kind == "state":
            return State.load(point.path).model
        return _mlflow_state(resolve_uri(TrackingConfig()), point.run_id, point.artifact).model
    except ConfigError as err:
        raise ConfigError("teacher", err.message) from None


@lru_cache(maxsize=2)
def _mlflow_state(tracking_uri: str, run_id: str, artifact: str) -> State:
    """The state logged as ``artifact`` of MLflow run ``run_id``, downloaded once per process: the early
    ``check`` (``edgeflow.pipeline.prepare``), the stage's own check and its run all read the same teacher
    (a run's artifacts do not change). Its models are shared: callers never modify them (``run`` trains
    a copy)."""
    import tempfile
    from pathlib import Path

    from edgeflow.models.checkpoint import Checkpoint, _mlflow_entry
    from edgeflow.state import State

    client = _mlflow_entry(Checkpoint("mlflow", run_id=run_id, artifact=artifact), tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, artifact, tmp))
        return State.load(local if (local / "state.json").is_file() else local / "state")


def _student(cfg: Config, state: State) -> nn.Module:
    from edgeflow.stages._zoo_spec import build_spec

    return build_spec(cfg.student, "student", state.input_shape, state.num_classes)


def check(cfg: Config, state: State) -> None:
    """Before any training: the student fits the dataset's shape, the teacher takes its inputs and
    gives its class count, and every hint names a module of the student and of the teacher."""
    teacher = load_teacher(cfg, state)
    student = _student(cfg, state)
    for s, t in cfg.hints.items():
        for key, name, model in (("hints", s, student), ("hints", t, teacher)):
            if name not in dict(model.named_modules()):
                raise ConfigError(key, f"{name!r} is not a module path of the {'student' if model is student else 'teacher'}")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    import copy

    from edgeflow.methods.distillation import Distiller
    from edgeflow.stages._common import float_reference
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate, fit

    check(cfg, state)
    state = float_reference(state, ctx)
    teacher = load_teacher(cfg, state)
    teacher_copy = copy.deepcopy(teacher)  # never train or move the state's model
    teacher_acc = evaluate(teacher_copy, ctx)["test_acc"]
    student = _student(cfg, state)
    callbacks = []
    if cfg.qat is not None:
        from edgeflow.methods.quantization import calibrate, quantize_model
        from edgeflow.methods.quantization.callbacks import QATCallback

        student = quantize_model(student, state.input_shape, quant_config(cfg.qat, "qat"), bn="simulate")
        calibrate(student, ctx.data.train_dataloader(), 8)
        callbacks.append(QATCallback(-1, -1))
    distiller = Distiller(teacher_copy, cfg.temperature, cfg.alpha, cfg.hints, cfg.hint_weight)
    distiller.attach(student, next(iter(ctx.data.train_dataloader()))[0])
    try:
        summary = fit(student, ctx, cfg, callbacks=callbacks, loss=distiller)
    finally:
        distiller.detach(student)
    if cfg.qat is not None:
        from edgeflow.methods.quantization import fold_simulated_bn, freeze_observers

        fold_simulated_bn(student)
        freeze_observers(student)
    test = evaluate(student, ctx)
    metrics = {**summary, "test_acc": test["test_acc"], "test_loss": test["test_loss"], "teacher_acc": teacher_acc,
               "acc_drop": teacher_acc - test["test_acc"], "student_params": float(_params(student)),
               "teacher_params": float(_params(teacher)), "param_ratio": _params(student) / _params(teacher)}
    new_state = state.with_model(student).with_model(teacher_copy, TEACHER)
    return StageResult(state=new_state, metrics=metrics)
