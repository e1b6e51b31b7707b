"""Hinton's soft-target loss and the hint (feature) loss, as a training loss for ``fit``."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, y: Tensor, temperature: float, alpha: float) -> Tensor:
    """``alpha · T² · KL(p_t ‖ p_s) + (1 − alpha) · CE(student, y)`` with ``p = softmax(logits / T)``.

    The ``T²`` factor keeps the soft term's gradients at the scale of the hard term's as ``T`` grows
    (Hinton et al. 2015, §2). ``alpha = 0`` is plain cross-entropy, ``alpha = 1`` soft targets only.
    """
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature**2
    if alpha >= 1:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, y)


def _channels(t: Tensor) -> int:
    return t.shape[1]


class _Capture:
    """A forward hook keeping the last output of a module."""

    def __init__(self, module: nn.Module) -> None:
        self.value: Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple, out: Tensor) -> None:
        self.value = out


class Distiller:
    """The distillation training loss ``self(model, x, y)`` for ``fit(student, ..., loss=distiller)``.

    A plain callable, not a module, so the teacher never joins the training task's modules. ``teacher`` is frozen (eval mode, no gradients). ``hints`` maps a student module path to a teacher
    module path: their outputs (same spatial size) are compared by MSE, weighted by ``hint_weight``,
    through a 1×1 convolution (or linear) adapter from the student's channels to the teacher's,
    trained with the student: ``fit`` optimises the parameters of ``model`` only, so ``attach`` registers
    them on the student under ``_kd_adapters`` and ``detach`` removes them (and the hooks) afterwards.
    """

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9,
                 hints: Mapping[str, str] | None = None, hint_weight: float = 1.0) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.hints = dict(hints or {})
        self.hint_weight = float(hint_weight)
        self._captures: list[tuple[_Capture, _Capture]] = []

    def attach(self, student: nn.Module, example: Tensor) -> None:
        """Hook the hint layers of ``student`` and the teacher and build the adapters from one forward
        pass of ``example`` (a batch); adapters live on the student as ``_kd_adapters``."""
        if not self.hints:
            return
        self._captures = [(_Capture(student.get_submodule(s)), _Capture(self.teacher.get_submodule(t)))
                          for s, t in self.hints.items()]
        with torch.no_grad():
            was = student.training
            student.eval()
            student(example)
            self.teacher(example)
            student.train(was)
        adapters = []
        for (s, t), (name_s, name_t) in zip(self._captures, self.hints.items()):
            fs, ft = s.value, t.value
            if fs.shape[2:] != ft.shape[2:]:
                raise ValueError(f"hint {name_s} -> {name_t}: feature shapes {tuple(fs.shape[1:])} and "
                                 f"{tuple(ft.shape[1:])} differ beyond the channels")
            cin, cout = _channels(fs), _channels(ft)
            if fs.dim() == 2:
                adapters.append(nn.Linear(cin, cout))
            else:
                adapters.append((nn.Conv1d if fs.dim() == 3 else nn.Conv2d)(cin, cout, 1))
        student._kd_adapters = nn.ModuleList(adapters)

    def detach(self, student: nn.Module) -> None:
        """Remove the hooks and the adapters: the student is a plain model again."""
        for s, t in self._captures:
            s.handle.remove()
            t.handle.remove()
        self._captures = []
        if hasattr(student, "_kd_adapters"):
            del student._kd_adapters

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The loss of ``model`` (the student) on a batch."""
        logits = model(x)
        self.teacher.to(x.device)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        loss = kd_loss(logits, teacher_logits, y, self.temperature, self.alpha)
        for (s, t), adapter in zip(self._captures, getattr(model, "_kd_adapters", [])):
            loss = loss + self.hint_weight * F.mse_loss(adapter(s.value), t.value)
        return loss
