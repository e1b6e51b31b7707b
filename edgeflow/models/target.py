"""Users' own models: build an ``nn.Module`` from an import path (``model._target_``).

``build_target(target, kwargs, input_shape, num_classes)`` imports ``target`` (a class or a
function), calls it with ``kwargs`` plus ``input_shape`` (a tuple, no batch dim) and
``num_classes`` where its signature names them, checks that the result is an ``nn.Module``, and
records the blueprint step ``{"op": "target", "target": ..., "kwargs": {...}}`` (the call, with the
shape arguments it received), so a ``State`` holding the model saves and loads without pickled code
as long as the import path still imports.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from edgeflow.core.errors import ConfigError
from edgeflow.core.targets import TARGET_KEY, call_arguments, resolve
from edgeflow.models.blueprint import json_form, set_blueprint

__all__ = ["build_target"]

KEY = f"model.{TARGET_KEY}"


def build_target(target: str, kwargs: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The module ``target(**kwargs, [input_shape=...], [num_classes=...])``, carrying its blueprint.

    Raises ``ConfigError`` naming ``model._target_`` (or the argument's key) if the target does not
    import, does not take the arguments, or returns something other than an ``nn.Module``."""
    fn = resolve(target, KEY)
    offered = {"input_shape": tuple(int(d) for d in input_shape), "num_classes": int(num_classes)}
    args = call_arguments(fn, target, dict(kwargs), offered, "model")
    model = fn(**args)
    if not isinstance(model, nn.Module):
        raise ConfigError(KEY, f"{target}(...) returned a {type(model).__name__}, not a torch.nn.Module")
    set_blueprint(model, [{"op": "target", "target": target, "kwargs": json_form(args)}])
    return model


def rebuild_target(step: Mapping[str, Any]) -> nn.Module:
    """Replay a ``target`` blueprint step: the recorded call, with the recorded arguments."""
    fn = resolve(step["target"], KEY)
    kwargs = dict(step["kwargs"])
    if "input_shape" in kwargs:  # a reserved key: edgeflow passed it, as a tuple
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    return fn(**kwargs)
