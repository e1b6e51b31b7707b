"""Pruning loops around a training function: schedules during one fit, prune/retrain cycles with
lottery-ticket rewinding, and structured (thinning) schedules.

Every loop takes ``train_fn(model, callbacks=()) -> dict``: whatever trains ``model`` in place
(``edgeflow.training.fit`` in the prune stage, a fake in tests). ``callbacks`` are Lightning callbacks
the loop needs during training (the schedule, an epoch snapshot); ``train_fn`` must hand them to its
trainer. ``log(metrics, step)`` (optional) receives the loop's per-event metrics. Each loop returns
its history: one row (a dict) per pruning event, ready for a CSV file.

The loops import Lightning only where they need a callback (``magnitude_during_fit``,
``iterative_magnitude(rewind="epoch")``); this module itself imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .schedules import SparsitySchedule

if TYPE_CHECKING:
    from torch import nn

REWINDS = ("none", "init", "epoch")

Log = Callable[[dict[str, float], int], None]
Pruner = Callable[["nn.Module", float], Any]
Measure = Callable[["nn.Module"], float]


class TrainFn(Protocol):
    """Trains ``model`` in place, passing ``callbacks`` to the trainer; returns its results
    (``iterative_magnitude`` reads ``best_val_acc``)."""

    def __call__(self, model: nn.Module, callbacks: Sequence[Any] = ()) -> Mapping[str, float]: ...


def magnitude_pruner(
    *,
    scope: str = "global",
    exclude: Iterable[str] = (),
    costs: Mapping[str, float] | None = None,
    max_layer: float = 0.95,
    power: float = 1.0,
) -> Pruner:
    """``prune_to(model, sparsity)`` for the magnitude loops: :func:`magnitude_prune` with ``scope``.

    With ``costs`` (per-layer hardware cost, e.g. :func:`energy.layer_costs` of the dense model)
    each layer gets its own sparsity from :func:`energy_aware_layer_sparsities` (scope ``layer``).
    """
    from .energy import energy_aware_layer_sparsities
    from .magnitude import magnitude_prune

    exclude = list(exclude)

    def prune_to(model: nn.Module, sparsity: float) -> None:
        if costs is None:
            magnitude_prune(model, sparsity, scope=scope, exclude=exclude)
            return
        targets = energy_aware_layer_sparsities(model, costs, sparsity, exclude=exclude,
                                                max_layer=max_layer, power=power)
        magnitude_prune(model, sparsity, scope="layer", exclude=exclude, layer_sparsity=targets)

    return prune_to


def magnitude_during_fit(
    model: nn.Module,
    schedule: SparsitySchedule,
    prune_to: Pruner,
    train_fn: TrainFn,
    *,
    measure: Measure | None = None,
    log: Log | None = None,
) -> list[dict[str, float]]:
    """Prune by ``schedule`` (unit ``step`` or ``epoch``) during one call of ``train_fn``.

    A :class:`PruningScheduleCallback` fires the events (logging ``sparsity`` = ``measure(model)``
    and ``target_sparsity``); afterwards ``model`` holds the weights of the best validation epoch at
    the final sparsity, if there was one. History rows: ``{"t", "target"}`` per event.
    """
    from .callback import PruningScheduleCallback

    cb = PruningScheduleCallback(schedule, prune_to, log=log, measure=measure)
    train_fn(model, callbacks=[cb])
    if cb.best_state is not None:
        model.load_state_dict(cb.best_state)
    return [{"t": t, "target": s} for t, s in cb.history]


def iterative_magnitude(
    model: nn.Module,
    schedule: SparsitySchedule,
    prune_to: Pruner,
    train_fn: TrainFn,
    *,
    rewind: str = "none",
    rewind_epoch: int = 0,
    measure: Measure | None = None,
    log: Log | None = None,
) -> list[dict[str, float]]:
    """Prune/retrain cycles ``c = 0 .. schedule.end`` (unit ``cycle``), in place.

    Cycle ``c``: if ``c`` is an event, ``prune_to(model, target)`` and log ``sparsity`` (=
    ``measure(model)``, the target if ``measure`` is None) and ``target_sparsity`` at step ``c``;
    from cycle 1 on, with a snapshot, rewind the surviving weights to it (masks kept); then
    ``train_fn`` and log its ``best_val_acc`` as ``cycle_best_val_acc``.

    ``rewind``: ``none``; ``init`` = the weights before cycle 0; ``epoch`` = the weights at the start
    of epoch ``rewind_epoch`` of the first fit that reaches it (late rewinding).
    History rows: ``{"t", "target", "sparsity"}`` per event.
    """
    from .lottery import rewind as rewind_to
    from .lottery import snapshot

    if rewind not in REWINDS:
        raise ValueError(f"rewind must be one of {REWINDS}, got {rewind!r}")
    history: list[dict[str, float]] = []
    snap = snapshot(model) if rewind == "init" else None
    for c in range(schedule.end + 1):
        target = schedule.target_at(c)
        if target is not None:
            prune_to(model, target)
            got = measure(model) if measure is not None else target
            if log is not None:
                log({"sparsity": got, "target_sparsity": target}, c)
            history.append({"t": c, "target": target, "sparsity": got})
        if snap is not None and c > 0:
            rewind_to(model, snap)
        snap_cb = None
        if rewind == "epoch" and snap is None:
            from .callback import SnapshotCallback

            snap_cb = SnapshotCallback(rewind_epoch)
        result = train_fn(model, callbacks=[snap_cb] if snap_cb is not None else [])
        if snap_cb is not None:
            snap = snap_cb.snapshot
        if log is not None:
            log({"cycle_best_val_acc": result["best_val_acc"]}, c)
    return history


def structured_schedule(
    model: nn.Module,
    input_shape: Iterable[int],
    schedule: SparsitySchedule,
    train_fn: TrainFn,
    *,
    criterion: str = "l1",
    scope: str = "layer",
    exclude: Iterable[str] = (),
    group_ratio_fn: Callable[[nn.Module, float], Mapping[str, float]] | None = None,
    multiple: int = 1,
    log: Log | None = None,
) -> tuple[nn.Module, list[dict], list[dict[str, float]]]:
    """Channel pruning with thinning between fits, cycles ``c = 0 .. schedule.end``.

    Cycle ``c``: if ``c`` is an event whose target channel sparsity exceeds the last one reached
    (``prev``), remove the relative ratio ``1 - (1 - target) / (1 - prev)`` of the channels of the
    current (already thinned) model with :func:`structured_prune` - per-group ratios from
    ``group_ratio_fn(model, ratio)`` if given - and log ``channel_sparsity`` at step ``c``; then
    ``train_fn`` on the current model, in place. ``structured_prune`` returns a new model, so the
    model passed in is trained only by the fits before the first event.

    Returns ``(model, group_rows, history)``: the final thin model, ``structured_prune``'s group
    report of the last event (empty if none pruned), and ``{"t", "target"}`` per applied event.
    """
    from .structured import structured_prune

    shape = tuple(input_shape)
    exclude = list(exclude)
    prev = 0.0
    group_rows: list[dict] = []
    history: list[dict[str, float]] = []
    for c in range(schedule.end + 1):
        target = schedule.target_at(c)
        if target is not None and target > prev:
            ratio = 1.0 - (1.0 - target) / (1.0 - prev)
            group_ratio = group_ratio_fn(model, ratio) if group_ratio_fn is not None else None
            model, group_rows = structured_prune(
                model, shape, ratio, criterion=criterion, scope=scope, exclude=exclude,
                group_ratio=group_ratio, multiple=multiple)
            prev = target
            if log is not None:
                log({"channel_sparsity": target}, c)
            history.append({"t": c, "target": target})
        train_fn(model)
    return model, group_rows, history
