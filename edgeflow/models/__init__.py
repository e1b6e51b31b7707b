"""The model zoo: plain PyTorch models, no torchvision.

``build_model(name, input_shape, num_classes, **kw)`` builds any zoo model by name. Every model
accepts ``input_shape`` (without the batch dimension) and ``num_classes`` so it can be composed
with any dataset whose shape it supports (see ``edgeflow.models.schemas`` for the rules).
``build_target(target, kwargs, input_shape, num_classes)`` builds a user's own model from its import
path (``edgeflow.models.target``); ``starting_state(model_cfg, input_shape, num_classes, tracking_uri)``
builds the configured one and applies ``model.checkpoint`` (``edgeflow.models.checkpoint``).

Public API (imported lazily so ``edgeflow.models.schemas`` stays torch-free): ``ZOO``,
``build_model`` (``edgeflow.models.zoo``), ``build_target``, ``starting_state`` and the model classes.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {
    "ZOO": "zoo", "build_model": "zoo", "build_target": "target", "starting_state": "start",
    "MLP": "mlp", "CNN": "cnn", "ResNet8": "resnet8", "DSCNN": "dscnn", "MobileNetV1": "mobilenet_v1",
    "AutoEncoder": "autoencoder", "TCN": "tcn",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
