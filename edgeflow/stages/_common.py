"""Helpers shared by stage adapters (not a stage kind: the leading underscore keeps it out of discovery).

Stages never import each other; what two of them need lives here or in ``edgeflow.methods``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeflow.state import StageContext, State


def float_reference(state: State, ctx: StageContext) -> State:
    """``state`` with the float model's test accuracy as reference, measured now if no earlier stage did."""
    if "test_acc" in state.reference_metrics:
        return state
    from edgeflow.training import evaluate

    return state.with_reference(test_acc=evaluate(state.model, ctx, "test")["test_acc"])


def current_onnx(state: State, ctx: StageContext, filename: str) -> tuple[State, Path, bool]:
    """The ONNX export of ``state.model``: the ``onnx`` artifact when it was exported from this model
    version, else a fresh export to ``ctx.out_dir / filename`` (bound to the returned state).

    Returns ``(state, path, fresh)``; ``fresh`` says the stage exported the model itself.
    """
    path = state.artifact("onnx")
    if path is not None:
        return state, path, False
    from edgeflow.export import export_model

    path = export_model(state.model, state.input_shape, ctx.out_dir / filename)
    return state.with_artifact("onnx", path), path, True


def quant_config(spec: Any, key: str) -> Any:
    """The ``QuantConfig`` of mapping ``spec`` (``{weight_bits: 8}``), checked; a ``ConfigError`` under ``key``."""
    from edgeflow.core.errors import ConfigError
    from edgeflow.methods.quantization.spec import QuantConfig

    if not isinstance(spec, dict):
        raise ConfigError(key, f"must be null or a mapping of quantization keys (weight_bits, ...), got {spec!r}")
    try:
        config = QuantConfig(**spec)
        config.check()
    except TypeError as err:
        raise ConfigError(key, f"unknown quantization key ({err})") from None
    except ConfigError as err:
        raise err.under(key) from None
    return config


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` to ``path`` as CSV, columns in order of first appearance; returns ``path``."""
    import csv

    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` to ``path`` as indented JSON; returns ``path`` (for the stage's artifacts)."""
    path.write_text(json.dumps(data, indent=2))
    return path
