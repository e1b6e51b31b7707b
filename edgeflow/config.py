"""Assembles the config groups' schemas into ``RunConfig``, validates a composed config with
one-line errors, and registers the schemas in Hydra's ConfigStore.

Each group's schema lives beside its package and imports only leaf modules (``edgeflow.core``):
``edgeflow.models.schemas``, ``edgeflow.data.schemas``, ``edgeflow.hardware.schema``,
``edgeflow.training.schema`` (trainer and training stages), ``edgeflow.tracking.schema`` and
``edgeflow.stages._schema`` (the stage base). Each stage kind's schema is the ``Config`` dataclass
of its module ``edgeflow.stages.<kind>`` (those modules import heavy libraries only inside ``run``).
``ConfigError`` (from ``edgeflow.core.errors``) is the documented error of ``validate``.

This module imports no torch, Lightning, MLflow or Optuna: config errors must answer in about a
second.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, fields
from functools import cache
from types import ModuleType
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from edgeflow.cache.schema import CacheConfig
from edgeflow.core.errors import ConfigError, require_int
from edgeflow.core.suggest import did_you_mean
from edgeflow.core.targets import TARGET_KEY
from edgeflow.data.schemas import DATASET_SCHEMAS, DatasetConfig, TargetDatasetConfig
from edgeflow.hardware.schema import HardwareConfig
from edgeflow.methods.quantization.spec import QuantConfig
from edgeflow.models.checkpoint import check as check_checkpoint
from edgeflow.models.schemas import MODEL_SCHEMAS, ModelConfig, TargetModelConfig
from edgeflow.stages._schema import StageConfig
from edgeflow.tracking.schema import TrackingConfig
from edgeflow.training.schema import TrainerConfig


@dataclass
class RunConfig:
    """The validated, typed form of a whole composed config."""

    model: ModelConfig | TargetModelConfig
    dataset: DatasetConfig | TargetDatasetConfig
    hardware: HardwareConfig
    trainer: TrainerConfig
    tracking: TrackingConfig
    stages: dict[str, StageConfig]
    seed: int = 0
    name: str = "edgeflow"
    optimize: list[Objective] | None = None
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class Objective:
    """A metric a sweeper optimizes: ``<stage>/<metric>`` and ``max`` or ``min``."""

    metric: str
    direction: str = "max"


DIRECTIONS = ("max", "min")


ROOT_KEYS = {"model", "dataset", "hardware", "trainer", "tracking", "stages", "seed", "name", "optimize", "cache"}


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
    if not isinstance(kind, str) or kind not in kinds:
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
        allowed = [f.name for f in fields(schema) if f.init]
        hint = did_you_mean(key.rsplit(".", 1)[-1], allowed)
        return ConfigError(key, f"unknown key{hint}; allowed here: {', '.join(allowed)}")
    if type(err).__name__ == "MissingMandatoryValue":
        return ConfigError(key, "is required but missing")
    return ConfigError(key, str(getattr(err, "msg", err)).splitlines()[0])


def _schema_for(table: dict[str, type], node: Any, prefix: str, what: str) -> type:
    name = node.get("name") if isinstance(node, (dict, DictConfig)) else None
    if not isinstance(name, str) or name not in table:
        raise ConfigError(f"{prefix}.name", f"unknown {what} {name!r}; allowed: {', '.join(sorted(table))}")
    return table[name]


def _model(node: Any, tracking: TrackingConfig) -> ModelConfig | TargetModelConfig:
    """The ``model`` node: a zoo model (``name``) or a user's own (``_target_``, imported now); a
    ``checkpoint`` must exist (a ``runs:/`` URI in the store of ``tracking.uri``)."""
    if isinstance(node, dict) and TARGET_KEY in node:
        try:
            typed = TargetModelConfig.from_node(node)
        except ConfigError as err:
            raise err.under("model") from None
    elif isinstance(node, dict) and "name" not in node:
        raise ConfigError("model.name", f"is required: a zoo model ({', '.join(sorted(MODEL_SCHEMAS))}), "
                                        f"or set model.{TARGET_KEY} to the import path of your own")
    else:
        typed = _typed(_schema_for(MODEL_SCHEMAS, node, "model", "model"), node, "model")
    if typed.checkpoint is not None:
        from edgeflow.tracking.mlflow_run import resolve_uri

        try:
            check_checkpoint(typed.checkpoint, resolve_uri(tracking))
        except ConfigError as err:
            raise err.under("model") from None
    return typed


def _dataset(node: Any) -> DatasetConfig | TargetDatasetConfig:
    """The ``dataset`` node: a bundled dataset (``name``) or a user's datamodule (``_target_``)."""
    if isinstance(node, dict) and TARGET_KEY in node:
        try:
            return TargetDatasetConfig.from_node(node)
        except ConfigError as err:
            raise err.under("dataset") from None
    return _typed(_schema_for(DATASET_SCHEMAS, node, "dataset", "dataset"), node, "dataset")


def validate(cfg: DictConfig | dict) -> RunConfig:
    """Check a composed config completely, before any training; raise one ``ConfigError`` if wrong.

    Checks unknown root keys, every group against its schema (types, unknown keys, ranges), the
    model's input shape against the dataset's, every stage against its kind's schema, and that no
    weights-only quantization (``act_bits: 32``) precedes a stage needing int8 QDQ (``QDQ_CONSUMERS``).
    Mistakes only a built model reveals are the stages' ``check`` hooks (``edgeflow.pipeline``).
    """
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
    _check_qdq_consumers(stages)
    tracking = _typed(TrackingConfig, raw.get("tracking") or {}, "tracking")
    return RunConfig(
        model=_model(raw["model"], tracking),
        dataset=_dataset(raw["dataset"]),
        hardware=_typed(HardwareConfig, raw.get("hardware") or {}, "hardware"),
        trainer=_typed(TrainerConfig, raw.get("trainer") or {}, "trainer"),
        tracking=tracking,
        stages=stages,
        seed=_seed(raw.get("seed", 0)),
        name=str(raw.get("name", "edgeflow")),
        optimize=_objectives(raw.get("optimize"), stages),
        cache=_typed(CacheConfig, raw.get("cache") or {}, "cache"),
    )


def _seed(value: Any) -> int:
    """``seed``: an integer in [0, 2**32) (what numpy and torch accept); ``1.5`` or ``abc`` is an error."""
    require_int(value, "seed", 0, 2**32 - 1)
    return value


#: stage kinds that need an int8 QDQ model (every activation quantized)
QDQ_CONSUMERS = ("export", "profile")


def _weights_only_key(cfg: QuantConfig) -> str | None:
    """The key giving ``act_bits: 32`` (weights-only quantization) in a quantization stage, if any."""
    if cfg.act_bits == 32:
        return "act_bits"
    return next((f"overrides.{pattern}.act_bits" for pattern, settings in cfg.overrides.items()
                 if settings.get("act_bits") == 32), None)


def _check_qdq_consumers(stages: dict[str, StageConfig]) -> None:
    """Refuse a weights-only quantization stage followed by a stage that exports int8 QDQ."""
    weights_only = None
    for name, cfg in stages.items():
        key = _weights_only_key(cfg) if isinstance(cfg, QuantConfig) else None
        if key:
            weights_only = f"stages.{name}.{key}"
        elif weights_only and cfg.kind in QDQ_CONSUMERS:
            raise ConfigError(weights_only, f"32 (weights-only quantization) cannot be exported as int8 QDQ, "
                                            f"which stage {name!r} needs; set act_bits to 2..8, "
                                            "or drop the export and profile stages (analyze costs weights-only models)")


def _objectives(value: Any, stages: dict[str, StageConfig]) -> list[Objective] | None:
    """Parse ``optimize``: null, or a list of ``<stage>/<metric>[:max|min]`` naming configured stages."""
    if value is None:
        return None
    allowed = "a list of '<stage>/<metric>:max|min' (e.g. [evaluate/test_acc:max, profile/latency_ms:min]) or null"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError("optimize", f"must be {allowed}, got {value!r}")
    objectives = []
    for i, entry in enumerate(value):
        metric, _, direction = str(entry).partition(":")
        stage, _, name = metric.partition("/")
        if not (stage and name) or (direction or "max") not in DIRECTIONS:
            raise ConfigError(f"optimize.{i}", f"must be '<stage>/<metric>:max|min', got {entry!r}")
        if stage not in stages:
            raise ConfigError(f"optimize.{i}", f"names stage {stage!r}, which is not in this recipe; "
                                               f"stages: {', '.join(stages)}")
        objectives.append(Objective(metric, direction or "max"))
    return objectives


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


__all__ = ["ConfigError", "RunConfig", "Objective", "ROOT_KEYS", "stage_kinds", "stage_module", "validate", "register_schemas"]
