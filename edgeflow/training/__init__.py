"""Training with Lightning: the classification task wrapper, callbacks, and the fit/evaluate helpers."""

from edgeflow.training.fit import evaluate, fit

__all__ = ["fit", "evaluate"]
