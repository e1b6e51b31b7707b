"""Stage ``evaluate``: test-set accuracy and loss of the current model.

The first ``evaluate`` of a run (before any compression) also records the float reference that
compression stages compare against (``state.reference_metrics["test_acc"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import require_choice
from edgeflow.stages._schema import StageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(StageConfig):
    split: str = "test"

    def __post_init__(self) -> None:
        require_choice(self.split, "split", ("test", "val"))


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Report ``<split>_acc`` (percent) and ``<split>_loss``."""
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate

    metrics = evaluate(state.model, ctx, cfg.split)
    if cfg.split == "test":
        state = state.with_reference(test_acc=metrics["test_acc"])
    return StageResult(state=state, metrics=metrics)
