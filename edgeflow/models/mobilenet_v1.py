"""MobileNetV1 with a width multiplier (MLPerf Tiny visual wake words: α = 0.25 at 96×96×3).

Reference: Howard et al. 2017; mlcommons/tiny visual_wake_words. At α = 0.25, 3×96×96 and 2 classes
it has 208,112 weights and 7.49 M MACs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgeflow.models.layers import conv_bn_relu

# (output channels at α = 1, stride) of the 13 depthwise-separable blocks
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """Conv 3×3 s2 → 13 × [depthwise 3×3 → pointwise 1×1] (each + BN + ReLU) → GAP → Linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, alpha: float = 0.25) -> None:
        super().__init__()
        cin = input_shape[0]
        width = int(32 * alpha)
        layers: list[nn.Module] = [conv_bn_relu(2, cin, width, 3, stride=2, padding=1)]
        for channels, stride in BLOCKS:
            cout = int(channels * alpha)
            layers.append(conv_bn_relu(2, width, width, 3, stride=stride, padding=1, groups=width))
            layers.append(conv_bn_relu(2, width, cout, 1))
            width = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
