"""A user model that fails while a stage runs (not before): for the tests of failed runs."""

from __future__ import annotations

from torch import Tensor, nn


class FailsInEvaluation(nn.Module):
    """A linear classifier that trains, but raises in any forward pass in eval mode — so the first
    validation of the ``train`` stage fails, after the run (and its MLflow run) exists."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        size = 1
        for d in input_shape:
            size *= d
        self.linear = nn.Linear(size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            raise RuntimeError("evaluation diverged")
        return self.linear(x.flatten(1))
