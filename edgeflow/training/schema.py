"""Schemas of training settings (torch-free): the ``trainer`` group and the fields of training stages.

``TrainerConfig`` is the ``trainer`` config group (``conf/trainer/default.yaml``);
``TrainingStageConfig`` is the base of every stage kind that trains (train, qat, prune, ...).
Range checks run in ``__post_init__`` and raise ``ConfigError`` with the bare key. Bounds:
``max_epochs`` in [1, 100000] (``MAX_EPOCHS``), ``patience`` in [0, 100000], ``lr`` finite in (0, 10],
``momentum`` in [0, 1), ``weight_decay`` finite in [0, 1], ``devices`` in [1, 1024], ``num_threads``
in [0, 1024].
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeflow.core.errors import MAX_EPOCHS, require, require_choice, require_finite
from edgeflow.stages._schema import StageConfig

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ACCELERATORS", "TrainerConfig", "TrainingStageConfig"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step", "onecycle")
ACCELERATORS = ("cpu", "gpu", "mps", "auto")
MAX_LR = 10               # a larger learning rate only diverges
MAX_WEIGHT_DECAY = 1      # decoupled/L2 decay above 1 zeroes the weights
MAX_DEVICES = 1024


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
        require(self.max_epochs <= MAX_EPOCHS, "max_epochs", f"an integer <= {MAX_EPOCHS}", self.max_epochs)
        require_finite(self.lr, "lr", f"a finite float in (0, {MAX_LR}]", 0 < self.lr <= MAX_LR)
        require_choice(self.optimizer, "optimizer", OPTIMIZERS)
        require(0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum)
        require_finite(self.weight_decay, "weight_decay", f"a finite float in [0, {MAX_WEIGHT_DECAY}]",
                       0 <= self.weight_decay <= MAX_WEIGHT_DECAY)
        require_choice(self.scheduler, "scheduler", SCHEDULERS)
        require(0 <= self.patience <= MAX_EPOCHS, "patience", f"an integer in [0, {MAX_EPOCHS}]", self.patience)


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
        require(1 <= self.devices <= MAX_DEVICES, "devices", f"an integer in [1, {MAX_DEVICES}]", self.devices)
        require(0 <= self.num_threads <= MAX_DEVICES, "num_threads", f"an integer in [0, {MAX_DEVICES}]",
                self.num_threads)
