"""The run's first ``State``: the configured model, built for the data, from a checkpoint if set."""

from __future__ import annotations

from edgeflow.core.errors import ConfigError
from edgeflow.models.checkpoint import start_from
from edgeflow.models.schemas import ModelConfig, TargetModelConfig
from edgeflow.models.target import build_target
from edgeflow.models.zoo import build_model
from edgeflow.state import State

__all__ = ["starting_state"]


def starting_state(cfg: ModelConfig | TargetModelConfig, input_shape: tuple[int, ...], num_classes: int,
                   tracking_uri: str) -> State:
    """A state holding the model ``cfg`` describes for data of ``input_shape`` / ``num_classes``: a
    zoo model (``name``) or a user's (``_target_``), with its weights (and reference metrics) from
    ``cfg.checkpoint`` when set (``edgeflow.models.checkpoint``; ``runs:/`` URIs are looked up at
    ``tracking_uri``). Raises ``ConfigError`` under ``model`` when the model does not fit the data or
    the checkpoint does not fit the model."""
    try:
        cfg = cfg.for_data(input_shape, num_classes)
        if isinstance(cfg, TargetModelConfig):
            model = build_target(cfg.target, cfg.kwargs, tuple(input_shape), num_classes)
        else:
            model = build_model(cfg.name, tuple(input_shape), num_classes, **cfg.options())
        reference: dict[str, float] = {}
        if cfg.checkpoint is not None:
            start = start_from(cfg.checkpoint, model, tracking_uri)
            model, reference = start.model, start.reference_metrics
    except ConfigError as err:
        raise (err if err.key.startswith("model.") else err.under("model")) from None
    return State.of(model, tuple(input_shape), num_classes, reference_metrics=reference)
