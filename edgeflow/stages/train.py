"""Stage ``train``: fit the model with Lightning (optimizer, LR schedule, early stopping, best checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(TrainingStageConfig):
    """Every option is a ``TrainingStageConfig`` field (max_epochs, lr, optimizer, scheduler, ...);
    only ``max_epochs`` has a default of its own."""

    max_epochs: int = 20


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Train, restore the best-validation weights, report ``val_acc`` and the checkpoint."""
    from edgeflow.state import StageResult
    from edgeflow.training import fit

    model = state.copy_model()
    summary = fit(model, ctx, cfg)
    return StageResult(state=state.with_model(model), metrics=summary, artifacts={})
