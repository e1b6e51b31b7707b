"""Small LeNet-style CNN for images of any size (C, H, W)."""

from __future__ import annotations

from torch import Tensor, nn

from edgeflow.models.layers import conv_bn_relu


class CNN(nn.Module):
    """[Conv3×3 → BN → ReLU → (MaxPool2 while the map is ≥ 4 px)] per width → global avg pool → Linear.

    Works on any input size: pooling stops halving once a side would drop below 2.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: tuple[int, ...] = (16, 32),
                 dropout: float = 0.0) -> None:
        super().__init__()
        cin, h, w = input_shape
        layers: list[nn.Module] = []
        for cout in channels:
            layers.append(conv_bn_relu(2, cin, cout, 3, padding=1))
            if min(h, w) >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.flatten(self.pool(self.features(x)))))
