"""The one accuracy formula edgeflow reports: ``percent_correct(correct, total)``.

Training/evaluation (``edgeflow.training.task``) and the int8 runtime's profiler
(``edgeflow.runtime.profiler``) both count correct predictions as integers and call this, so two
accuracies over the same predictions are the same float and their difference is exactly 0.
"""

from __future__ import annotations


def percent_correct(correct: int, total: int) -> float:
    """``100 · correct / total`` in Python floats (float64), from exact integer counts; ``total`` > 0."""
    return 100.0 * int(correct) / int(total)
