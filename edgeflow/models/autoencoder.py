"""Fully connected autoencoder, the MLPerf Tiny anomaly-detection model (640 inputs).

Reference: mlcommons/tiny, benchmark/training/anomaly_detection/keras_model.py. Four 128-unit
layers, an 8-unit bottleneck, four 128-unit layers, each Dense → BN → ReLU, and a linear output:
264,192 weights, 1,672 biases, 0.264 M MACs at 640 inputs.

As a classifier in edgeflow's pipeline it reconstructs its input; ``num_classes`` is ignored
unless ``classify`` is true, in which case a Linear head on the bottleneck replaces the decoder.
"""

from __future__ import annotations

import math

from torch import Tensor, nn


def _dense_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU())


class AutoEncoder(nn.Module):
    """640 → 128 ×4 → 8 → 128 ×4 → 640 (or → num_classes when ``classify``)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128, bottleneck: int = 8,
                 classify: bool = False) -> None:
        super().__init__()
        features = math.prod(input_shape)
        self.flatten = nn.Flatten()
        self.encoder = nn.Sequential(
            _dense_bn_relu(features, hidden), *[_dense_bn_relu(hidden, hidden) for _ in range(3)],
            _dense_bn_relu(hidden, bottleneck),
        )
        if classify:
            self.decoder = nn.Linear(bottleneck, num_classes)
        else:
            self.decoder = nn.Sequential(
                _dense_bn_relu(bottleneck, hidden), *[_dense_bn_relu(hidden, hidden) for _ in range(3)],
                nn.Linear(hidden, features),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(self.flatten(x)))
