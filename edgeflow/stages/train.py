"""Stage ``train``: fit the model with Lightning (optimizer, LR schedule, early stopping, best checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.config import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import ModelState, StageContext, StageResult


@dataclass
class Config(TrainingStageConfig):
    """Every option is a ``TrainingStageConfig`` field (max_epochs, lr, optimizer, scheduler, ...)."""


def run(cfg: Config, state: ModelState, ctx: StageContext) -> StageResult:
    """Train, restore the best-validation weights, report ``val_acc`` and the checkpoint."""
    from edgeflow.state import StageResult
    from edgeflow.training import fit

    summary = fit(state.model, ctx, cfg)
    return StageResult(state=state, metrics=summary, artifacts={})
