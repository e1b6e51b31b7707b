"""A user's own networks, as edgeflow sees them: plain ``nn.Module`` factories.

edgeflow builds them from ``model._target_`` (``nets.TinyCNN``) with the model YAML's other keys as
keyword arguments, adding ``input_shape`` (a tuple, no batch dim) and ``num_classes`` because the
signatures name them. To be quantized and exported, a network uses modules for its layers
(``nn.MaxPool2d``, not ``F.max_pool2d``) and traces with ``torch.fx`` (no data-dependent control flow).
"""

from __future__ import annotations

from torch import Tensor, nn


class TinyCNN(nn.Module):
    """Two conv3x3-BN-ReLU blocks (the first followed by 2x2 max-pooling), global average pool, linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> None:
        super().__init__()
        channels = input_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 32) -> nn.Module:
    """A function works as well as a class: flatten -> linear/ReLU -> linear."""
    features = 1
    for d in input_shape:
        features *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
