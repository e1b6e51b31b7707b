"""Lightning callback that runs a :class:`SparsitySchedule` during a fit.

Pass it to ``edgeflow.training.fit(model, ctx, cfg, callbacks=[cb])`` (or any ``pl.Trainer``).
``unit="epoch"``: events fire in ``on_train_epoch_start`` of epoch ``t``;
``unit="step"``: in ``on_train_batch_start`` when ``trainer.global_step == t`` (before that optimizer
step). On fit start the schedule is checked against the fit's length (``max_epochs`` or
``trainer.estimated_stepping_batches``): a schedule that would prune nothing or not reach its target
raises ``ConfigError`` before any training. After every optimizer step the masks are re-applied
(idempotent with ``fit``'s own re-application). The callback's state (events done, sparsity reached)
is saved in Lightning checkpoints, so a resumed fit neither re-prunes nor forgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch import nn

from .masks import apply_masks
from .schedules import SparsitySchedule


def _inner_model(pl_module: nn.Module) -> nn.Module:
    return getattr(pl_module, "model", pl_module)


class PruningScheduleCallback(pl.Callback):
    """Prune with ``pruner(model, sparsity)`` at every event of ``schedule``.

    ``pruner`` installs masks (e.g. ``functools.partial(magnitude_prune, scope="global")``).
    ``log(metrics, step)`` (optional) receives ``{"sparsity": s}`` at every event.
    """

    def __init__(
        self,
        schedule: SparsitySchedule,
        pruner: Callable[[nn.Module, float], Any],
        log: Callable[[dict[str, float], int | None], None] | None = None,
        measure: Callable[[nn.Module], float] | None = None,
        monitor: str = "val_acc",
    ) -> None:
        if schedule.unit not in ("step", "epoch"):
            raise ValueError("PruningScheduleCallback needs unit 'step' or 'epoch'")
        self.schedule = schedule
        self.pruner = pruner
        self.log_fn = log  # not `self.log`: Lightning overwrites callback.log with pl_module.log
        self.measure = measure
        self.monitor = monitor
        self.done: list[int] = []
        self.current: float = 0.0
        self.history: list[tuple[int, float]] = []
        self.best_state: dict | None = None
        self.best_val: float = float("-inf")

    # -------------------------------------------------------------- checks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.schedule.unit == "epoch":
            total = int(trainer.max_epochs or 0)
        else:
            total = int(trainer.estimated_stepping_batches)
        self.schedule.check(total)

    # -------------------------------------------------------------- events
    def _maybe_prune(self, t: int, pl_module: pl.LightningModule) -> None:
        if t in self.done:
            return
        target = self.schedule.target_at(t)
        if target is None:
            return
        model = _inner_model(pl_module)
        self.pruner(model, target)
        self.done.append(t)
        self.current = target
        self.history.append((t, target))
        if self.log_fn is not None:
            got = self.measure(model) if self.measure else target
            self.log_fn({"sparsity": got, "target_sparsity": target}, t)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.schedule.unit == "epoch":
            self._maybe_prune(trainer.current_epoch, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if self.schedule.unit == "step":
            self._maybe_prune(trainer.global_step, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        apply_masks(pl_module)

    def finished(self) -> bool:
        """True once the last event (``end``) has fired."""
        return self.schedule.end in self.done

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep the weights of the best validation epoch *at the final sparsity*: a fit that restores
        its overall best checkpoint could otherwise return a less sparse model from before ``end``.
        Read ``best_state`` after the fit and load it."""
        if trainer.sanity_checking or not self.finished():
            return
        val = trainer.callback_metrics.get(self.monitor)
        if val is None:
            return
        val = float(val)
        if val > self.best_val:
            self.best_val = val
            model = _inner_model(pl_module)
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # -------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return {"done": list(self.done), "current": self.current, "history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done = list(state_dict.get("done", []))
        self.current = float(state_dict.get("current", 0.0))
        self.history = [tuple(h) for h in state_dict.get("history", [])]


class SnapshotCallback(pl.Callback):
    """Keep a copy of the model's weights at the start of epoch ``epoch`` (lottery-ticket
    rewinding to epoch k). ``snapshot`` is ``None`` until then."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.snapshot: dict | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and self.snapshot is None:
            from .lottery import snapshot

            self.snapshot = snapshot(_inner_model(pl_module))
