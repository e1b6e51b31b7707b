"""DS-CNN, the MLPerf Tiny keyword-spotting model (49×10 MFCC input, 12 classes).

Reference: mlcommons/tiny, benchmark/training/keyword_spotting/keras_model.py (ds_cnn). At 1×49×10
it has 22,016 weights and 2.66 M MACs. The stem's (10, 4) stride-2 "same" convolution gives a
25×5 map; here padding (5, 1) gives the same output size and MAC count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgeflow.models.layers import conv_bn_relu


class DSCNN(nn.Module):
    """Conv(10×4, s2) → ``blocks`` × [depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU] → GAP → Linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 64, blocks: int = 4) -> None:
        super().__init__()
        cin = input_shape[0]
        layers: list[nn.Module] = [conv_bn_relu(2, cin, width, (10, 4), stride=2, padding=(5, 1))]
        for _ in range(blocks):
            layers.append(conv_bn_relu(2, width, width, 3, padding=1, groups=width))
            layers.append(conv_bn_relu(2, width, width, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
