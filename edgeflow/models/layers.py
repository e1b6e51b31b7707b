"""Small building blocks shared by the zoo models."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(
    dims: int, cin: int, cout: int, kernel: int | tuple[int, ...], stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0, groups: int = 1, dilation: int = 1, relu: bool = True,
) -> nn.Sequential:
    """Conv (no bias: BatchNorm follows) → BatchNorm → optional ReLU, in 1-D or 2-D."""
    conv_cls = nn.Conv1d if dims == 1 else nn.Conv2d
    bn_cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    layers: list[nn.Module] = [
        conv_cls(cin, cout, kernel, stride=stride, padding=padding, groups=groups, dilation=dilation, bias=False),
        bn_cls(cout),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)
