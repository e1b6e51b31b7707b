"""Training with Lightning: the classification task wrapper, callbacks, and the fit/evaluate helpers.

Public API (imported lazily so ``edgeflow.training.schema`` stays torch-free): ``fit``, ``evaluate``
(``edgeflow.training.loop``); the schemas ``TrainerConfig``, ``TrainingStageConfig`` live in
``edgeflow.training.schema``.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {"fit": "loop", "evaluate": "loop"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
