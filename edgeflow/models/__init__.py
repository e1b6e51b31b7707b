"""The model zoo: plain PyTorch models, no torchvision.

``build_model(name, input_shape, num_classes, **kw)`` builds any zoo model by name. Every model
accepts ``input_shape`` (without the batch dimension) and ``num_classes`` so it can be composed
with any dataset whose shape it supports (see ``edgeflow.models.schemas`` for the rules).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeflow.models.autoencoder import AutoEncoder
from edgeflow.models.cnn import CNN
from edgeflow.models.dscnn import DSCNN
from edgeflow.models.mlp import MLP
from edgeflow.models.mobilenet_v1 import MobileNetV1
from edgeflow.models.resnet8 import ResNet8
from edgeflow.models.tcn import TCN

ZOO: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn": CNN,
    "resnet8": ResNet8,
    "dscnn": DSCNN,
    "mobilenet_v1": MobileNetV1,
    "autoencoder": AutoEncoder,
    "tcn": TCN,
}

__all__ = ["ZOO", "build_model", "MLP", "CNN", "ResNet8", "DSCNN", "MobileNetV1", "AutoEncoder", "TCN"]


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` for inputs of ``input_shape`` (no batch dim) and ``num_classes``."""
    if name not in ZOO:
        raise KeyError(f"model.name: unknown model {name!r}; available: {', '.join(ZOO)}")
    return ZOO[name](input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
