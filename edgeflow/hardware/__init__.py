"""Hardware models and per-layer cost analysis.

Public API (imported lazily so ``edgeflow.hardware.schema`` stays torch-free):

- ``analyze(model, input_shape, default_bits=32) -> ModelCost`` (``edgeflow.hardware.graph``)
- ``load(name_or_cfg) -> HardwareModel``; ``HardwareModel.estimate(cost) -> Estimate`` and
  ``HardwareModel.estimate_layer(...) -> LayerEstimate`` (``edgeflow.hardware.model``)
- ``storage_bytes(weight, bits) -> dict``, ``best_format(sizes, supported)`` (``edgeflow.hardware.storage``)
- ``HardwareConfig`` (``edgeflow.hardware.schema``), the differentiable costs in
  ``edgeflow.hardware.differentiable``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "analyze": "graph", "ModelCost": "graph", "LayerCost": "graph",
    "load": "model", "HardwareModel": "model", "Estimate": "model", "LayerEstimate": "model",
    "available_targets": "model",
    "storage_bytes": "storage", "best_format": "storage",
    "HardwareConfig": "schema", "precision_of": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"edgeflow.hardware.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgeflow.hardware' has no attribute {name!r}")
