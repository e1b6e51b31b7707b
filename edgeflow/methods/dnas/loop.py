"""The search loop shared by the DNAS methods: weights and architecture trained together, each with its
own optimiser and learning rate (PLiNIO's ``net_parameters`` / ``nas_parameters`` split).

Per epoch: every training batch computes ``cross_entropy + regulariser(soft costs)``, both optimisers
take a step (the architecture's only after ``warmup_epochs`` — the warm-up trains the weights of the
full supernet without regulariser); then the validation accuracy and the soft costs are measured
and handed to ``on_epoch``. Plain PyTorch: no Lightning, no tracking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.core.accuracy import percent_correct
from edgeflow.methods.dnas.regularizer import Regularizer


class Supernet(Protocol):
    """What the loop needs of a supernet (``PIT``, ``MixedPrecision``, ``ChoiceSupernet``)."""

    def __call__(self, x: Tensor) -> Tensor: ...
    def arch_parameters(self) -> list[nn.Parameter]: ...
    def weight_parameters(self) -> list[nn.Parameter]: ...
    def soft_cost(self, hw: Any) -> dict[str, Tensor]: ...
    def train(self, mode: bool = True) -> Any: ...


@torch.no_grad()
def accuracy(net: Callable[[Tensor], Tensor], loader: Iterable) -> float:
    """Top-1 accuracy in percent (exact counts) of ``net`` in eval mode on ``loader``."""
    correct = total = 0
    for x, y in loader:
        correct += int((net(x).argmax(1) == y).sum())
        total += int(y.numel())
    return percent_correct(correct, total)


def search(net: Supernet, train_loader: Iterable, val_loader: Iterable, hw: Any, reg: Regularizer, *,
           epochs: int, warmup_epochs: int = 0, weight_lr: float = 1e-3, arch_lr: float = 1e-2,
           arch_optimizer: str = "adam",
           on_epoch: Callable[[int, dict[str, float]], None] | None = None,
           before_epoch: Callable[[int], None] | None = None) -> list[dict[str, float]]:
    """Run ``warmup_epochs`` + ``epochs`` epochs; returns one row per epoch (``epoch``, ``phase``
    0 = warm-up / 1 = search, ``train_loss``, ``reg_loss``, ``val_acc`` and every soft cost).

    ``arch_optimizer``: ``adam`` (steps of about ``arch_lr`` whatever the gradient's size) or ``sgd``
    (momentum 0.9; steps proportional to the gradient, so the balance of task loss and cost sets
    which masks move). ``reg.reference`` is filled with the supernet's costs before the first step when empty; the
    target ramp counts search epochs. ``before_epoch(e)`` runs first in each epoch (e.g. a
    temperature schedule).
    """
    weight_opt = torch.optim.Adam(net.weight_parameters(), lr=weight_lr)
    arch_opt = (torch.optim.Adam(net.arch_parameters(), lr=arch_lr) if arch_optimizer == "adam"
                else torch.optim.SGD(net.arch_parameters(), lr=arch_lr, momentum=0.9))
    if not reg.reference:
        with torch.no_grad():
            reg.reference = {k: float(v) for k, v in net.soft_cost(hw).items()}
    rows = []
    for epoch in range(warmup_epochs + epochs):
        searching = epoch >= warmup_epochs
        if before_epoch is not None:
            before_epoch(epoch)
        net.train()
        task_sum = reg_sum = 0.0
        batches = 0
        for x, y in train_loader:
            loss = F.cross_entropy(net(x), y)
            reg_loss = reg.loss(net.soft_cost(hw), epoch - warmup_epochs) if searching else None
            total = loss + reg_loss.to(loss.dtype) if reg_loss is not None else loss
            weight_opt.zero_grad(set_to_none=True)
            arch_opt.zero_grad(set_to_none=True)
            total.backward()
            weight_opt.step()
            if searching:
                arch_opt.step()
            task_sum += float(loss.detach())
            reg_sum += float(reg_loss.detach()) if reg_loss is not None else 0.0
            batches += 1
        net.train(False)
        with torch.no_grad():
            costs = {k: float(v) for k, v in net.soft_cost(hw).items()}
        row = {"epoch": float(epoch), "phase": float(searching), "train_loss": task_sum / max(1, batches),
               "reg_loss": reg_sum / max(1, batches), "val_acc": accuracy(net, val_loader), **costs}
        rows.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    return rows
