"""DARTS-style supernet: choice blocks of alternative sub-modules, identity included for depth.

``ChoiceSupernet(model, input_shape, kernel_sizes=(3, 5, 7), identity=True)`` turns every
conv → BatchNorm → ReLU block of a copy of ``model`` (an ``nn.Sequential`` whose first module is a
stride-1, "same"-padded Conv1d/Conv2d with an odd kernel and ``groups == 1`` — found by module type
and data shapes, never by name) into a :class:`ChoiceBlock` of that block with each kernel size of
``kernel_sizes`` (weights started from the trained kernel: centre-cropped or zero-padded) and, when
the block keeps its input's shape, ``nn.Identity`` (the block is skipped: depth search).

A choice block mixes its candidates with weights ``w = softmax(α/τ)`` (``sampling="softmax"``,
DARTS), a Gumbel-softmax sample (``"gumbel"``) or a straight-through one-hot Gumbel sample
(``"hard"``) while training, and runs the argmax candidate in eval mode — the model ``export()``
returns. ``temperature`` τ is set per epoch by the caller (``set_temperature``). ``soft_cost(hw)``
is the expectation ``Σ_i w_i · cost(candidate_i)`` (softmax weights at τ; the roofline of
``soft_model_cost`` per candidate layer, identity costing nothing) plus the fixed layers; on one-hot
weights it equals ``analyze`` + estimate of the export.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.graph import set_submodule
from edgeflow.graph.trace import example_input
from edgeflow.hardware.differentiable import soft_model_cost
from edgeflow.hardware.graph import ModelCost, analyze
from edgeflow.methods.dnas.spec import SAMPLINGS
from edgeflow.models import blueprint


class ChoiceBlock(nn.Module):
    """Alternative sub-modules mixed by architecture weights (see the module docstring)."""

    def __init__(self, candidates: Sequence[nn.Module], labels: Sequence[str], sampling: str = "softmax") -> None:
        super().__init__()
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.candidates = nn.ModuleList(candidates)
        self.labels = list(labels)
        self.sampling = sampling
        self.temperature = 1.0
        self.alpha = nn.Parameter(torch.zeros(len(candidates)))

    def probs(self) -> Tensor:
        """``softmax(α/τ)``: the mixture weights of ``softmax`` sampling and of the expected cost."""
        return torch.softmax(self.alpha / self.temperature, 0)

    def chosen(self) -> int:
        return int(torch.argmax(self.alpha.detach()))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self.candidates[self.chosen()](x)
        if self.sampling == "softmax":
            w = self.probs()
        else:
            w = F.gumbel_softmax(self.alpha, tau=self.temperature, hard=self.sampling == "hard")
        return sum(w[i] * c(x) for i, c in enumerate(self.candidates))


def _block_conv(block: nn.Module) -> nn.Module | None:
    """The conv of a conv → BN → ReLU ``nn.Sequential`` a choice block can replace, else None."""
    if type(block) is not nn.Sequential or len(block) == 0:
        return None
    conv = block[0]
    if type(conv) not in (nn.Conv1d, nn.Conv2d) or conv.groups != 1 or conv.padding_mode != "zeros":
        return None
    k, d = conv.kernel_size, conv.dilation
    same = all(p == di * (ki - 1) // 2 for p, di, ki in zip(conv.padding, d, k)) if isinstance(conv.padding, tuple) else False
    odd = len(set(k)) == 1 and k[0] % 2 == 1
    return conv if same and odd and all(s == 1 for s in conv.stride) else None


def _resized(block: nn.Sequential, k: int) -> nn.Sequential:
    """A copy of ``block`` whose conv has ``k`` taps per spatial dim (centre crop / zero pad), same padding."""
    new = copy.deepcopy(block)
    conv = new[0]
    k0 = conv.kernel_size[0]
    dims = conv.weight.dim() - 2
    w = conv.weight.detach()
    if k < k0:
        c = (k0 - k) // 2
        w = w[(slice(None), slice(None)) + (slice(c, c + k),) * dims]
    elif k > k0:
        p = (k - k0) // 2
        w = F.pad(w, (p, p) * dims)
    conv.weight = nn.Parameter(w.clone())
    conv.kernel_size = (k,) * dims
    conv.padding = tuple(d * (k - 1) // 2 for d in conv.dilation)
    return new


def choice_blocks(model: nn.Module, input_shape: Iterable[int]) -> list[tuple[str, bool]]:
    """``(name, keeps_shape)`` of every block a choice block can replace (``keeps_shape``: identity fits)."""
    shapes: dict[str, tuple[tuple, tuple]] = {}
    hooks = []
    names = [n for n, m in model.named_modules() if _block_conv(m) is not None]
    for n in names:
        hooks.append(model.get_submodule(n).register_forward_hook(
            lambda m, a, out, n=n: shapes.__setitem__(n, (tuple(a[0].shape), tuple(out.shape)))))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input(model, input_shape, 1))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    nested = {n for n in names for o in names if o != n and n.startswith(o + ".")}
    return [(n, shapes[n][0] == shapes[n][1]) for n in names if n in shapes and n not in nested]


class ChoiceSupernet(nn.Module):
    """The supernet of ``model`` (see the module docstring). ``model`` is not changed."""

    def __init__(self, model: nn.Module, input_shape: Iterable[int], kernel_sizes: Sequence[int] = (3, 5, 7),
                 identity: bool = True, sampling: str = "softmax", default_bits: int = 8) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.model = copy.deepcopy(model)
        self._reference = (copy.deepcopy(model),)  # the seed's structure (a tuple: not a submodule)
        self.nominal: ModelCost = analyze(self.model, self.input_shape, default_bits)
        self.blocks: list[str] = []
        for name, keeps_shape in choice_blocks(self.model, self.input_shape):
            block = self.model.get_submodule(name)
            cands = [_resized(block, k) for k in sorted(set(kernel_sizes))]
            labels = [f"k{k}" for k in sorted(set(kernel_sizes))]
            if identity and keeps_shape:
                cands.append(nn.Identity())
                labels.append("identity")
            choice = ChoiceBlock(cands, labels, sampling)
            k0 = block[0].kernel_size[0]
            if f"k{k0}" in labels:  # start from the seed's own choice
                with torch.no_grad():
                    choice.alpha[labels.index(f"k{k0}")] = 1.0
            set_submodule(self.model, name, choice)
            self.blocks.append(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _choices(self) -> dict[str, ChoiceBlock]:
        return {n: self.model.get_submodule(n) for n in self.blocks}

    def set_temperature(self, tau: float) -> None:
        for c in self._choices().values():
            c.temperature = float(tau)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [c.alpha for c in self._choices().values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch and p.requires_grad]

    def soft_cost(self, hw: Any) -> dict[str, Tensor]:
        """Fixed layers plus ``Σ_i w_i · cost(candidate_i)`` per choice block (``w = softmax(α/τ)``)."""
        convs = {f"{n}.0": c for n, c in self._choices().items()}
        fixed = ModelCost([layer for layer in self.nominal.layers if layer.name not in convs],
                          self.nominal.input_shape, self.nominal.input_bytes)
        total = soft_model_cost(hw, fixed)
        for layer in self.nominal.layers:
            choice = convs.get(layer.name)
            if choice is None:
                continue
            single = ModelCost([layer], self.nominal.input_shape)
            dims = len(layer.attrs["kernel"])
            cin, cout = layer.input_shapes[0][0], layer.output_shape[0]
            p = choice.probs().to(torch.float64)
            for i, label in enumerate(choice.labels):
                if label == "identity":
                    continue
                taps = int(label[1:]) ** dims
                cost = soft_model_cost(hw, single, channels={layer.name: (cin, cout, taps)})
                total = {k: total[k] + p[i] * cost[k] for k in total}
        return total

    def architecture(self) -> list[dict[str, Any]]:
        """One row per choice block: the candidate chosen and every candidate's probability."""
        rows = []
        for name, c in self._choices().items():
            conv = c.candidates[0][0]
            rows.append({"layer": name, "channels_before": conv.out_channels,
                         "channels": 0 if c.labels[c.chosen()] == "identity" else conv.out_channels,
                         "choice": c.labels[c.chosen()],
                         "probs": " ".join(f"{lab}={p:.2f}" for lab, p in zip(c.labels, c.probs().tolist()))})
        return rows

    @torch.no_grad()
    def export(self) -> nn.Module:
        """The trained model with every choice block replaced by its argmax candidate; the seed's
        blueprint gains a ``resize`` step (kernel sizes) and an ``identity`` step (skipped blocks)."""
        (reference,) = self._reference
        model = copy.deepcopy(self.model)
        skipped = []
        for name, c in self._choices().items():
            chosen = copy.deepcopy(c.candidates[c.chosen()])
            set_submodule(model, name, chosen)
            if isinstance(chosen, nn.Identity):
                skipped.append(name)
        steps = blueprint.blueprint_of(reference)
        if steps is not None:
            steps = [*steps, blueprint.resize_step(reference, model)]
            if skipped:
                steps.append({"op": "identity", "modules": skipped})
        blueprint.set_blueprint(model, steps)
        return model.train(self.training)
