"""Schemas of training settings (torch-free): the ``trainer`` group and the fields of training stages.

``TrainerConfig`` is the ``trainer`` config group (``conf/trainer/default.yaml``);
``TrainingStageConfig`` is the base of every stage kind that trains (train, qat, prune, ...).
Range checks run in ``__post_init__`` and raise ``ConfigError`` with the bare key.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeflow.core.errors import require, require_choice
from edgeflow.stages._schema import StageConfig

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ACCELERATORS", "TrainerConfig", "TrainingStageConfig"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step", "onecycle")
ACCELERATORS = ("cpu", "gpu", "mps", "auto")


@dataclass
class TrainingStageConfig(StageConfig):
    """Shared optimisation settings of every stage that trains (train, qat, prune, ...).

    ``patience`` is early-stopping patience in epochs on ``val_acc`` (0 disables it). The weights
    of the best validation epoch are restored at the end of the fit. Subclasses override the
    defaults of ``max_epochs``/``lr`` where their stage's YAML differs.
    """

    max_epochs: int = 10
    lr: float = 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    patience: int = 0

    def __post_init__(self) -> None:
        require(self.max_epochs >= 1, "max_epochs", "an integer >= 1", self.max_epochs)
        require(self.lr > 0, "lr", "a float > 0", self.lr)
        require_choice(self.optimizer, "optimizer", OPTIMIZERS)
        require(0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum)
        require(self.weight_decay >= 0, "weight_decay", "a float >= 0", self.weight_decay)
        require_choice(self.scheduler, "scheduler", SCHEDULERS)
        require(self.patience >= 0, "patience", "an integer >= 0", self.patience)


@dataclass
class TrainerConfig:
    """Lightning Trainer settings shared by every stage that trains."""

    accelerator: str = "cpu"
    devices: int = 1
    deterministic: bool = True
    progress_bar: bool = True
    num_threads: int = 1  # torch intra-op threads; 0 = torch's default (all cores)

    def __post_init__(self) -> None:
        require_choice(self.accelerator, "accelerator", ACCELERATORS)
        require(self.devices >= 1, "devices", "an integer >= 1", self.devices)
        require(self.num_threads >= 0, "num_threads", "an integer >= 0", self.num_threads)
