"""ResNet-8, the MLPerf Tiny image-classification model (CIFAR-10, 16/32/64 filters).

Reference: mlcommons/tiny, benchmark/training/image_classification/keras_model.py. At 3×32×32 and
10 classes it has 77,360 weights and 12.50 M MACs, like the reference int8 .tflite.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgeflow.models.layers import conv_bn_relu


class BasicBlock(nn.Module):
    """Two 3×3 conv+BN; the shortcut is identity, or a 1×1 conv (no BN) when shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(2, cin, cout, 3, stride=stride, padding=1)
        self.conv2 = conv_bn_relu(2, cout, cout, 3, padding=1, relu=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if (stride != 1 or cin != cout) else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet8(nn.Module):
    """Stem conv 3×3 → three residual stacks (strides 1, 2, 2) → global average pool → Linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, filters: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        cin = input_shape[0]
        self.stem = conv_bn_relu(2, cin, filters[0], 3, padding=1)
        self.stack1 = BasicBlock(filters[0], filters[0], 1)
        self.stack2 = BasicBlock(filters[0], filters[1], 2)
        self.stack3 = BasicBlock(filters[1], filters[2], 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(filters[2], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stack3(self.stack2(self.stack1(self.stem(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))
