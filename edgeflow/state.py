"""What flows between stages: the model state, the run context, and a stage's result.

The model (an ``nn.Module``) is the single source of truth: every compression a stage applies lives
in its module tree (masks as buffers, quantizers as submodules). Stages never read another stage's
private state; they read the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # heavy imports only for type checkers
    import pytorch_lightning as pl
    from omegaconf import DictConfig
    from torch import nn


@dataclass
class ModelState:
    """The model being optimized and what later stages need to know about it.

    ``input_shape`` excludes the batch dimension. ``reference_metrics`` holds the float model's
    metrics (e.g. ``test_acc``) once measured, so compression stages can report their drop.
    ``history`` lists the stage names applied so far, in order.
    """

    model: nn.Module
    input_shape: tuple[int, ...]
    num_classes: int
    history: list[str] = field(default_factory=list)
    reference_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StageContext:
    """Everything a stage may use besides the model.

    ``datamodule`` is set up (``setup("fit")`` and ``setup("test")`` done). ``hardware`` loads the
    configured target's model on first access. ``log_metrics(metrics, step)`` writes
    ``<stage>/<metric>`` to MLflow (the stage passes bare names). ``log_artifact(path)`` uploads a file.
    ``out_dir`` is this stage's own folder inside the run directory.
    """

    cfg: DictConfig
    stage_name: str
    datamodule: pl.LightningDataModule
    out_dir: Path
    seed: int
    log_metrics: Callable[[dict[str, float], int | None], None]
    log_artifact: Callable[[Path], None]
    _hardware_loader: Callable[[], Any]
    _hardware: Any = None

    @property
    def hardware(self) -> Any:
        """The target's ``edgeflow.hardware.HardwareModel`` (loaded lazily, once)."""
        if self._hardware is None:
            self._hardware = self._hardware_loader()
        return self._hardware


@dataclass
class StageResult:
    """A stage's output: the (possibly new) state, final metrics (bare names) and artifact files."""

    state: ModelState
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
