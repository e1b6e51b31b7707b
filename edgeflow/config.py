"""Typed config schemas, their ConfigStore registration, and validation with one-line errors.

This module imports no torch, Lightning, MLflow or Optuna: config errors must answer in about a
second. Each stage kind's schema is the ``Config`` dataclass of its module ``edgeflow.stages.<kind>``
(those modules import heavy libraries only inside ``run``).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, fields
from functools import cache
from types import ModuleType
from typing import Any, ClassVar

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from edgeflow.core.errors import ConfigError, require, require_choice

# --------------------------------------------------------------------------------------- stages
@dataclass
class StageConfig:
    """Base of every stage schema. ``kind`` picks the stage module ``edgeflow.stages.<kind>``."""

    kind: str = MISSING


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step", "onecycle")


@dataclass
class TrainingStageConfig(StageConfig):
    """Shared optimisation settings of every stage that trains (train, qat, prune, ...).

    ``patience`` is early-stopping patience in epochs on ``val_acc`` (0 disables it). The weights
    of the best validation epoch are restored at the end of the fit.
    """

    max_epochs: int = 10
    lr: float = 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    patience: int = 0

    def __post_init__(self) -> None:
        require(self.max_epochs >= 1, "max_epochs", "an integer >= 1", self.max_epochs)
        require(self.lr > 0, "lr", "a float > 0", self.lr)
        require_choice(self.optimizer, "optimizer", OPTIMIZERS)
        require(0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum)
        require(self.weight_decay >= 0, "weight_decay", "a float >= 0", self.weight_decay)
        require_choice(self.scheduler, "scheduler", SCHEDULERS)
        require(self.patience >= 0, "patience", "an integer >= 0", self.patience)


# ---------------------------------------------------------------------------------------- models
@dataclass
class ModelConfig:
    """Base of every model schema. ``input_shape`` and ``num_classes`` come from the dataset."""

    name: str = MISSING
    input_shape: list[int] = MISSING
    num_classes: int = MISSING

    #: human-readable layout the model expects, and the rank of ``input_shape`` (None = any)
    expects: ClassVar[str] = "any shape"
    rank: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        require(self.num_classes >= 1, "num_classes", "an integer >= 1", self.num_classes)
        if self.rank is not None and len(self.input_shape) != self.rank:
            raise ConfigError("name", f"{self.name} expects input_shape {self.expects}, but the dataset "
                                            f"gives {list(self.input_shape)}; pick a model for this dataset")
        self.check_input()

    def check_input(self) -> None:
        """Model-specific checks of ``input_shape`` beyond its rank (override where needed)."""


def _positive_list(values: list[int], key: str) -> None:
    require(len(values) > 0 and all(v >= 1 for v in values), key, "a non-empty list of integers >= 1", values)


@dataclass
class MLPConfig(ModelConfig):
    hidden: list[int] = field(default_factory=lambda: [128, 64])

    def check_input(self) -> None:
        require(all(v >= 1 for v in self.hidden), "hidden", "a list of integers >= 1", self.hidden)


@dataclass
class CNNConfig(ModelConfig):
    channels: list[int] = field(default_factory=lambda: [16, 32])
    dropout: float = 0.0
    expects: ClassVar[str] = "(C, H, W)"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        _positive_list(self.channels, "channels")
        require(0 <= self.dropout < 1, "dropout", "in [0, 1)", self.dropout)


@dataclass
class ResNet8Config(ModelConfig):
    filters: list[int] = field(default_factory=lambda: [16, 32, 64])
    expects: ClassVar[str] = "(C, H, W) with H, W >= 8"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(len(self.filters) == 3 and all(f >= 1 for f in self.filters), "filters",
                "three integers >= 1", self.filters)
        if min(self.input_shape[1:]) < 8:
            raise ConfigError("name", f"resnet8 expects input_shape {self.expects}, got {list(self.input_shape)}")


@dataclass
class DSCNNConfig(ModelConfig):
    width: int = 64
    blocks: int = 4
    expects: ClassVar[str] = "(C, H, W) with H >= 10, W >= 4 (MLPerf Tiny KWS: 1×49×10)"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(self.width >= 1, "width", "an integer >= 1", self.width)
        require(self.blocks >= 0, "blocks", "an integer >= 0", self.blocks)
        if self.input_shape[1] < 10 or self.input_shape[2] < 4:
            raise ConfigError("name", f"dscnn expects input_shape {self.expects}, got {list(self.input_shape)}")


@dataclass
class MobileNetV1Config(ModelConfig):
    alpha: float = 0.25
    expects: ClassVar[str] = "(C, H, W) with H, W >= 32"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(self.alpha > 0 and int(8 * self.alpha) >= 1, "alpha", "a float >= 0.125", self.alpha)
        if min(self.input_shape[1:]) < 32:
            raise ConfigError("name", f"mobilenet_v1 expects input_shape {self.expects}, "
                                            f"got {list(self.input_shape)}")


@dataclass
class AutoEncoderConfig(ModelConfig):
    hidden: int = 128
    bottleneck: int = 8
    classify: bool = True

    def check_input(self) -> None:
        require(self.hidden >= 1, "hidden", "an integer >= 1", self.hidden)
        require(self.bottleneck >= 1, "bottleneck", "an integer >= 1", self.bottleneck)


@dataclass
class TCNConfig(ModelConfig):
    channels: list[int] = field(default_factory=lambda: [24, 24, 24, 24])
    kernel_size: int = 5
    expects: ClassVar[str] = "(C, L) for 1-D signals"
    rank: ClassVar[int | None] = 2

    def check_input(self) -> None:
        _positive_list(self.channels, "channels")
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "an odd integer >= 1",
                self.kernel_size)


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "mlp": MLPConfig, "cnn": CNNConfig, "resnet8": ResNet8Config, "dscnn": DSCNNConfig,
    "mobilenet_v1": MobileNetV1Config, "autoencoder": AutoEncoderConfig, "tcn": TCNConfig,
}


# --------------------------------------------------------------------------------- trainer etc.
@dataclass
class TrainerConfig:
    """Lightning Trainer settings shared by every stage that trains."""

    accelerator: str = "cpu"
    devices: int = 1
    deterministic: bool = True
    progress_bar: bool = True
    num_threads: int = 1  # torch intra-op threads; 0 = torch's default (all cores)

    def __post_init__(self) -> None:
        require_choice(self.accelerator, "accelerator", ("cpu", "gpu", "mps", "auto"))
        require(self.devices >= 1, "devices", "an integer >= 1", self.devices)
        require(self.num_threads >= 0, "num_threads", "an integer >= 0", self.num_threads)


@dataclass
class TrackingConfig:
    """Where runs are recorded. ``uri`` null means ``sqlite:///<cwd>/mlflow.db``."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = "edgeflow"
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RunConfig:
    """The validated, typed form of a whole composed config."""

    model: ModelConfig
    dataset: Any
    hardware: Any
    trainer: TrainerConfig
    tracking: TrackingConfig
    stages: dict[str, StageConfig]
    seed: int = 0
    name: str = "edgeflow"


ROOT_KEYS = {"model", "dataset", "hardware", "trainer", "tracking", "stages", "seed", "name"}


# ------------------------------------------------------------------------------------ discovery
@cache
def stage_kinds() -> dict[str, str]:
    """Stage kind → module path, found by listing ``edgeflow/stages`` (no torch imported)."""
    import edgeflow.stages as pkg

    return {m.name: f"edgeflow.stages.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)
            if not m.name.startswith("_")}


def stage_module(kind: str) -> ModuleType:
    """The module implementing stage ``kind`` (its ``Config`` and ``run``)."""
    kinds = stage_kinds()
    if kind not in kinds:
        raise ConfigError("kind", f"unknown stage kind {kind!r}; allowed: {', '.join(sorted(kinds))}")
    return importlib.import_module(kinds[kind])


# ----------------------------------------------------------------------------------- validation
def _typed(schema: type, node: Any, prefix: str) -> Any:
    """Merge ``node`` into ``schema`` (types, unknown keys) and build the dataclass (ranges)."""
    if not isinstance(node, (dict, DictConfig)):
        raise ConfigError(prefix, f"must be a mapping, got {node!r}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except ConfigError as err:
        raise err.under(prefix) from None
    except OmegaConfBaseException as err:
        raise _omegaconf_error(err, schema, prefix) from None


def _omegaconf_error(err: OmegaConfBaseException, schema: type, prefix: str) -> ConfigError:
    key = f"{prefix}.{err.full_key}" if getattr(err, "full_key", None) else prefix
    if type(err).__name__ == "ConfigKeyError":
        allowed = ", ".join(f.name for f in fields(schema) if f.init)
        return ConfigError(key, f"unknown key; allowed here: {allowed}")
    if type(err).__name__ == "MissingMandatoryValue":
        return ConfigError(key, "is required but missing")
    return ConfigError(key, str(getattr(err, "msg", err)).splitlines()[0])


def _schema_for(table: dict[str, type], node: Any, prefix: str, what: str) -> type:
    name = node.get("name") if isinstance(node, (dict, DictConfig)) else None
    if name not in table:
        raise ConfigError(f"{prefix}.name", f"unknown {what} {name!r}; allowed: {', '.join(sorted(table))}")
    return table[name]


def validate(cfg: DictConfig | dict) -> RunConfig:
    """Check a composed config completely, before any training; raise one ``ConfigError`` if wrong.

    Checks unknown root keys, every group against its schema (types, unknown keys, ranges), the
    model's input shape against the dataset's, and every stage against its kind's schema.
    """
    from edgeflow.data.schemas import DATASET_SCHEMAS
    from edgeflow.hardware.schema import HardwareConfig

    try:
        raw = OmegaConf.to_container(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(getattr(err, "full_key", "") or "config", str(err).splitlines()[0]) from None
    raw.pop("hydra", None)
    for key in raw:
        if key not in ROOT_KEYS:
            raise ConfigError(key, f"unknown top-level key; allowed: {', '.join(sorted(ROOT_KEYS))}")
    for key in ("model", "dataset", "stages"):
        if key not in raw:
            raise ConfigError(key, "is required but missing")
    stages_raw = raw["stages"] or {}
    if not isinstance(stages_raw, dict) or not stages_raw:
        raise ConfigError("stages", "must be a non-empty mapping name -> stage config (pick a recipe=...)")
    stages: dict[str, StageConfig] = {}
    for name, node in stages_raw.items():
        prefix = f"stages.{name}"
        if not isinstance(node, dict) or "kind" not in node:
            raise ConfigError(f"{prefix}.kind", f"is required; allowed: {', '.join(sorted(stage_kinds()))}")
        try:
            schema = stage_module(node["kind"]).Config
        except ConfigError as err:
            raise err.under(prefix) from None
        stages[name] = _typed(schema, node, prefix)
    model_schema = _schema_for(MODEL_SCHEMAS, raw["model"], "model", "model")
    return RunConfig(
        model=_typed(model_schema, raw["model"], "model"),
        dataset=_typed(_schema_for(DATASET_SCHEMAS, raw["dataset"], "dataset", "dataset"), raw["dataset"], "dataset"),
        hardware=_typed(HardwareConfig, raw.get("hardware") or {}, "hardware"),
        trainer=_typed(TrainerConfig, raw.get("trainer") or {}, "trainer"),
        tracking=_typed(TrackingConfig, raw.get("tracking") or {}, "tracking"),
        stages=stages,
        seed=int(raw.get("seed", 0)),
        name=str(raw.get("name", "edgeflow")),
    )


def register_schemas() -> None:
    """Register every schema in Hydra's ConfigStore (group ``schema/<group>``), for discovery."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, schema in MODEL_SCHEMAS.items():
        store.store(group="schema/model", name=name, node=schema)
    store.store(group="schema/trainer", name="default", node=TrainerConfig)
    store.store(group="schema/tracking", name="default", node=TrackingConfig)
    for kind in stage_kinds():
        store.store(group="schema/stage", name=kind, node=stage_module(kind).Config)


__all__ = [
    "ConfigError", "require", "require_choice", "StageConfig", "TrainingStageConfig", "ModelConfig",
    "MODEL_SCHEMAS", "TrainerConfig", "TrackingConfig", "RunConfig", "stage_kinds", "stage_module",
    "validate", "register_schemas",
]
