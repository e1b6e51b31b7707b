"""Temporal convolutional network for 1-D signals (e.g. MNIST-1D, 1×40).

Causal-free ("same") dilated 1-D convolutions with dilation doubling per layer, as in the
seeds' PIT/TCN examples; about 9 k parameters with the defaults. ``kernel_sizes`` and
``dilations`` (optional, one entry per block) set each block's kernel and dilation instead of the
shared ``kernel_size`` and the doubling 1, 2, 4, ... (what a NAS varies per block).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from edgeflow.models.layers import conv_bn_relu


class TCN(nn.Module):
    """[Conv1d k, dilation 2^i, 'same' padding → BN → ReLU] per width → global avg pool → Linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: tuple[int, ...] = (24, 24, 24, 24),
                 kernel_size: int = 5, kernel_sizes: Sequence[int] | None = None,
                 dilations: Sequence[int] | None = None) -> None:
        super().__init__()
        for name, values in (("kernel_sizes", kernel_sizes), ("dilations", dilations)):
            if values is not None and len(values) != len(channels):
                raise ValueError(f"{name} has {len(values)} entries but channels has {len(channels)} blocks")
        cin = input_shape[0]
        layers: list[nn.Module] = []
        for i, cout in enumerate(channels):
            k = kernel_size if kernel_sizes is None else int(kernel_sizes[i])
            dilation = 2 ** i if dilations is None else int(dilations[i])
            layers.append(conv_bn_relu(1, cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.pool(self.features(x))))
