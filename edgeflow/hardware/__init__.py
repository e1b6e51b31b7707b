"""Hardware models and per-layer cost analysis.

Public API (imported lazily so ``edgeflow.hardware.schema`` stays torch-free):

- ``analyze(model, input_shape, default_bits=32) -> ModelCost`` (``edgeflow.hardware.graph``)
- ``load(name_or_cfg) -> HardwareModel``; ``HardwareModel.estimate(cost) -> Estimate`` and
  ``HardwareModel.estimate_layer(...) -> LayerEstimate`` (``edgeflow.hardware.model``)
- ``storage_bytes(weight, bits) -> dict``, ``best_format(sizes, supported)``, ``at_rest_format(sizes)``
  (``edgeflow.hardware.storage``; canonical Huffman coding in ``edgeflow.hardware.huffman``)
- ``HardwareConfig`` (``edgeflow.hardware.schema``), the differentiable costs in
  ``edgeflow.hardware.differentiable``.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {
    "analyze": "graph", "ModelCost": "graph", "LayerCost": "graph",
    "load": "model", "HardwareModel": "model", "Estimate": "model", "LayerEstimate": "model",
    "available_targets": "model",
    "storage_bytes": "storage", "best_format": "storage", "at_rest_format": "storage",
    "HardwareConfig": "schema", "precision_of": "schema",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
