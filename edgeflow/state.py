"""What flows between stages: the ``State`` (named models, reference metrics, artifacts), the
``StageContext`` a stage runs in, and the ``StageResult`` it returns.

The models are the single source of truth: every compression a stage applies lives in their module
trees (masks as buffers, quantizers as submodules). A ``State`` is immutable: a stage returns a new
one (``state.with_model(...)``, ``state.with_artifact(...)``) and never changes the one it got, so
the state that entered a stage stays valid (for the stage cache, resume and comparisons).

Artifacts are bound to the model version that produced them: ``with_artifact`` records the
model's ``model_version`` fingerprint and ``artifact()`` hands the file back only while the model is
still that version, so no stage can read a file made from an older model.

This module imports no torch at import time (config validation never reaches it, but the CLI does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # heavy imports only for type checkers
    import pytorch_lightning as pl
    from torch import nn

    from edgeflow.training.schema import TrainerConfig

MAIN = "model"  # the name of the model the pipeline optimizes
STATE_FILE = "state.json"
log = logging.getLogger("edgeflow")


def model_version(model: nn.Module) -> str:
    """A fingerprint of ``model``: its module classes and flags (``module_flags``), every state-dict
    entry's name, dtype, shape and bytes. Equal fingerprints mean the same function; a change to any
    weight, mask, quantizer range, observer flag or layer changes it (train/eval mode does not).
    Cost: one pass over the weights."""
    import torch

    from edgeflow.models.blueprint import module_flags

    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps(module_flags(model), sort_keys=True).encode())
    for name, module in model.named_modules():
        digest.update(f"{name}:{type(module).__module__}.{type(module).__qualname__};".encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:  # extra state (plain values)
            digest.update(repr(value).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A file a stage made from model ``model`` at version ``version`` (see ``model_version``)."""

    path: Path
    model: str
    version: str


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class State:
    """The models being optimized and what later stages need to know about them.

    ``models`` maps names to modules: ``model`` (the one the pipeline optimizes) always, plus any a
    stage adds (``teacher``, ``little``, ``big``, ...). ``input_shape`` excludes the batch dimension.
    ``reference_metrics`` holds the float model's metrics once measured (``test_acc``), so
    compression stages report their drop. ``artifacts`` maps keys (``onnx``) to files bound to the
    model version that made them. ``history`` lists the stages applied so far, in order.
    """

    models: Mapping[str, nn.Module]
    input_shape: tuple[int, ...]
    num_classes: int
    reference_metrics: Mapping[str, float] = field(default_factory=dict)
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)
    history: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if MAIN not in self.models:
            raise ValueError(f"a State needs a model named {MAIN!r}; got {sorted(self.models)}")
        object.__setattr__(self, "models", _frozen(self.models))
        object.__setattr__(self, "reference_metrics", _frozen(self.reference_metrics))
        object.__setattr__(self, "artifacts", _frozen(self.artifacts))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "history", tuple(self.history))

    @classmethod
    def of(cls, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> State:
        """A state holding one model (named ``model``)."""
        return cls(models={MAIN: model}, input_shape=tuple(input_shape), num_classes=num_classes, **kw)

    @property
    def model(self) -> nn.Module:
        """The model the pipeline optimizes (``models["model"]``)."""
        return self.models[MAIN]

    # ------------------------------------------------------------------ new states
    def with_model(self, model: nn.Module, name: str = MAIN) -> State:
        """This state with ``models[name]`` set to ``model``."""
        return replace(self, models={**self.models, name: model})

    def without_model(self, name: str) -> State:
        """This state without ``models[name]`` (and without the artifacts made from it)."""
        if name == MAIN:
            raise ValueError(f"the model named {MAIN!r} cannot be removed")
        return replace(self, models={k: m for k, m in self.models.items() if k != name},
                       artifacts={k: a for k, a in self.artifacts.items() if a.model != name})

    def with_reference(self, **metrics: float) -> State:
        """This state with reference metrics added; values already recorded are kept (first wins)."""
        return replace(self, reference_metrics={**{k: float(v) for k, v in metrics.items()}, **self.reference_metrics})

    def with_artifact(self, key: str, path: Path | str, model: str = MAIN) -> State:
        """This state with file ``path`` recorded under ``key``, bound to ``models[model]`` as it is now."""
        return replace(self, artifacts={**self.artifacts, key: Artifact(Path(path), model, model_version(self.models[model]))})

    def with_history(self, stage: str) -> State:
        """This state with ``stage`` appended to the history."""
        return replace(self, history=(*self.history, stage))

    def copy_model(self, name: str = MAIN) -> nn.Module:
        """A deep copy of ``models[name]``, for a stage that changes weights in place (training)."""
        import copy

        return copy.deepcopy(self.models[name])

    # ------------------------------------------------------------------ artifacts
    def artifact(self, key: str) -> Path | None:
        """The file recorded under ``key`` if it exists and its model has not changed since; else None.

        A stale artifact (the model changed after the file was made) is reported in the log and never
        returned, so a stage cannot measure a file that is not the current model.
        """
        found = self.artifacts.get(key)
        if found is None or not found.path.is_file():
            return None
        current = self.models.get(found.model)
        if current is None or model_version(current) != found.version:
            log.warning("artifact %r (%s) is stale: model %r changed after it was made", key, found.path, found.model)
            return None
        return found.path

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path | str) -> Path:
        """Write the state to ``folder``: ``state.json`` plus one weights file per model.

        Models are saved as their blueprint (how to rebuild the architecture, see
        ``edgeflow.models.blueprint``) and their state dict (tensors only), so ``load`` never
        unpickles code. Raises ``ValueError`` for a model edgeflow cannot rebuild.
        """
        import torch

        from edgeflow.models.blueprint import blueprint_of, module_flags

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        models = {}
        for name, model in self.models.items():
            steps = blueprint_of(model)
            if steps is None:
                raise ValueError(f"model {name!r} ({type(model).__name__}) has no blueprint: it was not built by "
                                 "edgeflow.models.build_model, so it cannot be saved without pickling code")
            torch.save(model.state_dict(), folder / f"{name}.pt")
            models[name] = {"blueprint": steps, "flags": module_flags(model), "version": model_version(model),
                            "training": model.training}
        meta = {
            "models": models,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "reference_metrics": dict(self.reference_metrics),
            "artifacts": {k: {"path": str(a.path), "model": a.model, "version": a.version}
                          for k, a in self.artifacts.items()},
            "history": list(self.history),
        }
        (folder / STATE_FILE).write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> State:
        """Read a state written by ``save`` (weights loaded with ``weights_only=True``).

        Raises ``ValueError`` if a rebuilt model does not reproduce the saved version.
        """
        import torch

        from edgeflow.models.blueprint import load_weights, rebuild

        folder = Path(folder)
        meta = json.loads((folder / STATE_FILE).read_text())
        models = {}
        for name, entry in meta["models"].items():
            model = rebuild(entry["blueprint"])
            load_weights(model, torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True),
                         entry["flags"])
            model.train(entry["training"])
            if model_version(model) != entry["version"]:
                raise ValueError(f"{folder / STATE_FILE}: model {name!r} did not rebuild to the saved version")
            models[name] = model
        artifacts = {k: Artifact(Path(a["path"]), a["model"], a["version"]) for k, a in meta["artifacts"].items()}
        return cls(models=models, input_shape=tuple(meta["input_shape"]), num_classes=int(meta["num_classes"]),
                   reference_metrics=meta["reference_metrics"], artifacts=artifacts, history=tuple(meta["history"]))


def _load_target(name: str) -> Any:
    """The bundled target ``name`` (uncached; the pipeline passes a cached ``target_source``)."""
    from edgeflow.hardware import load

    return load(name)


def child_seed(seed: int, name: str) -> int:
    """The seed of sub-run ``name`` of a run seeded ``seed``: distinct per name, stable across runs."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


@dataclass
class StageContext:
    """Everything a stage may use besides the state: narrow and typed.

    - ``data``: the LightningDataModule, set up for fit and test;
    - ``hardware``: the run's target's ``HardwareModel``; ``target(name)``: another target by name
      (a stage costing the model on targets of its own, ``stages.profile.hardware: [gap9, rpi4]``);
    - ``trainer``: the Lightning settings shared by every fit;
    - ``out_dir``: this stage's (or sub-run's) own folder; ``seed``: its seed;
    - ``log_metrics(values, step)``: ``<stage>/<metric>`` into this context's MLflow run;
      ``log_artifact(path)``: a file into it (under the stage's name);
    - ``child(name)``: a sub-run (a NAS trial, a teacher's training, ...) with its own folder
      ``out_dir/name``, seed ``child_seed(seed, name)`` and a nested MLflow run under this one; use it
      as ``with ctx.child("trial_3") as sub: ...`` so the nested run ends FINISHED, or FAILED on error.

    ``reads`` names the config groups the stage actually used (``dataset``, ``hardware``,
    ``trainer``): with the stage's own config they are everything its result depends on.
    ``data_source`` and ``hardware_source`` build the datamodule / the run's hardware model,
    ``target_source(name)`` a bundled target (``conf/hardware/<name>.yaml``); the pipeline passes
    cached functions, so each is built once per run and children share them.
    """

    name: str
    out_dir: Path
    seed: int
    tracker: Any
    trainer_cfg: TrainerConfig
    data_source: Callable[[], pl.LightningDataModule]
    hardware_source: Callable[[], Any]
    target_source: Callable[[str], Any] = _load_target
    reads: set[str] = field(default_factory=set)
    owns_run: bool = False

    @property
    def data(self) -> pl.LightningDataModule:
        """The dataset's LightningDataModule (set up)."""
        self.reads.add("dataset")
        return self.data_source()

    @property
    def trainer(self) -> TrainerConfig:
        """Lightning settings of every fit (accelerator, devices, deterministic, progress bar)."""
        self.reads.add("trainer")
        return self.trainer_cfg

    @property
    def hardware(self) -> Any:
        """The run's target's ``edgeflow.hardware.HardwareModel`` (the ``hardware`` group)."""
        self.reads.add("hardware")
        return self.hardware_source()

    def hardware_option(self, key: str) -> Any:
        """One option of the run's target (``hardware.<key>``, e.g. ``sparse_formats``), counted as
        read on its own (``hardware.<key>``): a stage that needs only this option, not the cost
        model, is shared by the stage cache across targets that agree on it."""
        self.reads.add(f"hardware.{key}")
        return getattr(self.hardware_source().cfg, key)

    def target(self, name: str | None = None) -> Any:
        """The ``HardwareModel`` of target ``name``: the run's target (``hardware``, with its
        command-line overrides) when ``name`` is None or the run's target's name, else the bundled
        target ``conf/hardware/<name>.yaml``. Only the run's target counts as reading ``hardware``."""
        run_target = self.hardware_source()
        if name is None or name == run_target.name:
            self.reads.add("hardware")
            return run_target
        return self.target_source(name)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Log ``<stage>/<metric>`` values (bare names in ``values``) at ``step``."""
        self.tracker.log_metrics({f"{self.name}/{k}": v for k, v in values.items()}, step)

    def log_metric_rows(self, rows: list[tuple[Mapping[str, float], int | None]]) -> None:
        """Log several steps at once (``(values, step)`` rows, bare names): one write to the store."""
        prefixed = [({f"{self.name}/{k}": v for k, v in values.items()}, step) for values, step in rows]
        if hasattr(self.tracker, "log_metric_rows"):
            self.tracker.log_metric_rows(prefixed)
        else:  # a tracker of a caller's own (tests): one call per step
            for values, step in prefixed:
                self.tracker.log_metrics(values, step)

    def log_artifact(self, path: Path) -> None:
        """Upload ``path`` into this context's run under the stage's name, keeping its sub-folder of
        ``out_dir`` (``profile/gap9/profile_layers.csv``: same-named files of targets stay apart)."""
        path = Path(path)
        folder = self.name
        if path.parent != self.out_dir and path.parent.is_relative_to(self.out_dir):
            folder = f"{self.name}/{path.parent.relative_to(self.out_dir).as_posix()}"
        self.tracker.log_artifact(path, folder)

    def child(self, name: str, seed: int | None = None, tags: Mapping[str, str] | None = None) -> StageContext:
        """A sub-run: folder ``out_dir/name``, seed ``child_seed(seed, name)`` (or ``seed``), and a
        nested MLflow run named ``<stage>/<name>`` under this context's run (tag ``edgeflow.parent_stage``).
        It shares the data, trainer settings and hardware model; what it reads counts as read here."""
        out_dir = self.out_dir / name
        out_dir.mkdir(parents=True, exist_ok=True)
        tracker = self.tracker.child(f"{self.name}/{name}", {"edgeflow.parent_stage": self.name, **(tags or {})})
        return replace(self, out_dir=out_dir, seed=child_seed(self.seed, name) if seed is None else seed,
                       tracker=tracker, owns_run=True)

    def __enter__(self) -> StageContext:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """A child context ends its nested run: FINISHED, or FAILED with the error."""
        if self.owns_run:
            self.tracker.finish(exc)


@dataclass
class StageResult:
    """A stage's output: the new state, final metrics (bare names) and artifact files."""

    state: State
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
