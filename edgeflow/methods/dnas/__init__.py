"""Differentiable NAS: PIT masks, choice supernets and mixed-precision search, regularised by the
differentiable hardware model (``edgeflow.hardware.differentiable``).

Plain PyTorch (no Hydra, MLflow or files). Every method is an ``nn.Module`` wrapping a model with
``arch_parameters()`` / ``weight_parameters()``, ``soft_cost(hw)`` and ``export()`` (a plain module
recorded in the model's blueprint); :func:`search` trains weights and architecture together under a
:class:`Regularizer`.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {
    "PIT": "pit", "time_searchable": "pit", "MixedPrecision": "mps", "MixedQuantizer": "mps",
    "ChoiceSupernet": "supernet", "ChoiceBlock": "supernet", "choice_blocks": "supernet",
    "ChannelMask": "masks", "TapMask": "masks", "binarize": "masks",
    "Regularizer": "regularizer", "COSTS": "spec", "METHODS": "spec",
    "search": "loop", "accuracy": "loop", "Supernet": "loop",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
