"""The zoo's name → class table and ``build_model`` (imports torch and every model)."""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeflow.models.autoencoder import AutoEncoder
from edgeflow.models.blueprint import json_form, set_blueprint
from edgeflow.models.cnn import CNN
from edgeflow.models.dscnn import DSCNN
from edgeflow.models.mlp import MLP
from edgeflow.models.mobilenet_v1 import MobileNetV1
from edgeflow.models.resnet8 import ResNet8
from edgeflow.models.tcn import TCN

__all__ = ["ZOO", "build_model"]

ZOO: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn": CNN,
    "resnet8": ResNet8,
    "dscnn": DSCNN,
    "mobilenet_v1": MobileNetV1,
    "autoencoder": AutoEncoder,
    "tcn": TCN,
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` for inputs of ``input_shape`` (no batch dim) and ``num_classes``.

    The model carries its blueprint (``edgeflow.models.blueprint``), so a ``State`` holding it can be saved."""
    if name not in ZOO:
        raise KeyError(f"model.name: unknown model {name!r}; available: {', '.join(ZOO)}")
    model = ZOO[name](input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
    set_blueprint(model, [{"op": "zoo", "name": name, "input_shape": [int(d) for d in input_shape],
                           "num_classes": int(num_classes), "options": json_form(kwargs)}])
    return model
