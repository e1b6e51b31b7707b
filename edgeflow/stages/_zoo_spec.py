"""A zoo model named inside a stage's config (``student: {name: tcn, channels: [8, 8, 8, 8]}``).

Not a stage kind (the leading underscore keeps it out of discovery). Torch-free: the stage schemas
call ``check_spec`` during config validation; ``spec_for_data`` and ``build_spec`` run once the
data's shape is known (a stage's ``check`` / ``run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from edgeflow.core.errors import ConfigError
from edgeflow.models.schemas import MODEL_SCHEMAS, ModelConfig

if TYPE_CHECKING:
    from torch import nn


def check_spec(spec: Any, key: str) -> ModelConfig:
    """The typed config of zoo-model mapping ``spec`` (``name`` plus that model's options; no shape
    yet). Raises one ``ConfigError`` under ``key`` for anything else: an unknown name, an unknown
    option, a value out of range."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(key, f"must be a mapping with a zoo model name ({', '.join(sorted(MODEL_SCHEMAS))}) "
                               f"and its options, got {spec!r}")
    name = spec["name"]
    if name not in MODEL_SCHEMAS:
        raise ConfigError(f"{key}.name", f"unknown model {name!r}; allowed: {', '.join(sorted(MODEL_SCHEMAS))}")
    if any(k in spec for k in ("input_shape", "num_classes", "checkpoint")):
        raise ConfigError(key, "takes the model's options only; its input shape and classes are the dataset's")
    schema = MODEL_SCHEMAS[name]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), {**spec, "input_shape": None, "num_classes": None})
        return OmegaConf.to_object(merged)
    except ConfigError as err:
        raise err.under(key) from None
    except OmegaConfBaseException as err:
        sub = getattr(err, "full_key", "") or ""
        return _raise(err, f"{key}.{sub}" if sub else key)


def _raise(err: OmegaConfBaseException, key: str) -> Any:
    if type(err).__name__ == "ConfigKeyError":
        raise ConfigError(key, "unknown option of this model")
    raise ConfigError(key, str(getattr(err, "msg", err)).splitlines()[0])


def spec_for_data(spec: Any, key: str, input_shape: tuple[int, ...], num_classes: int) -> ModelConfig:
    """``check_spec`` for data of ``input_shape`` and ``num_classes``: a model that does not fit the
    data's shape is a ``ConfigError`` under ``key``."""
    typed = check_spec(spec, key)
    try:
        return typed.for_data(input_shape, num_classes)
    except ConfigError as err:
        raise err.under(key) from None


def build_spec(spec: Any, key: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The zoo model ``spec`` names, built for the data (it carries its blueprint)."""
    from edgeflow.models.zoo import build_model

    typed = spec_for_data(spec, key, input_shape, num_classes)
    return build_model(typed.name, tuple(input_shape), num_classes, **typed.options())
