"""Training with Lightning: the classification task wrapper, callbacks, and the fit/evaluate helpers.

Public API (imported lazily so ``edgeflow.training.schema`` stays torch-free): ``fit``, ``evaluate``
(``edgeflow.training.fit``); the schemas ``TrainerConfig``, ``TrainingStageConfig`` live in
``edgeflow.training.schema``.

``fit`` is both a submodule and a function: the first lookup here binds the package attribute of
every name the submodule exports (so ``fit`` is the function). Import ``fit``/``evaluate`` from this
package; an earlier ``import edgeflow.training.fit`` would leave the submodule bound to ``fit``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"fit": "fit", "evaluate": "fit"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"edgeflow.training.{_EXPORTS[name]}")
        globals().update({n: getattr(module, n) for n, m in _EXPORTS.items() if m == _EXPORTS[name]})
        return globals()[name]
    raise AttributeError(f"module 'edgeflow.training' has no attribute {name!r}")
