"""Adaptive systems as one ``nn.Module``: the parts and the policy thresholds live in the model.

A system has ``P`` paths run in order; path ``k`` produces logits from what path ``k − 1`` left
(``step``), and a sample is served by the first path whose confidence is above its threshold
(``thresholds[k]``, a buffer; the last path serves whatever is left). ``forward`` is that policy,
computing each path only on the samples still undecided; ``path_logits`` runs every path on every
sample (calibration). Thresholds start at 1.0: every sample goes to the last path, so training and
validation see the biggest path until calibration sets them.

- ``BigLittle(parts)``: independent models, smallest first (``little`` then ``big``);
- ``EarlyExit.from_model(model, exits, num_classes)``: a chain model cut at exit points, a small
  head (average pool to 4 positions → linear) at each; path ``k`` continues the backbone from exit ``k − 1``.

``VariableWidth`` (``slimmable``) is the third kind. ``blueprint_step(system)`` / ``rebuild(step)``
describe and rebuild a system from its parts' blueprints (``edgeflow.models.blueprint`` op ``adaptive``), so a ``State`` holding one saves and loads.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from edgeflow.methods.adaptive.confidence import MEASURES, confidence


class AdaptiveSystem(nn.Module):
    """Base: ``measure``, ``thresholds`` (buffer ``[P − 1]``), ``path_names``, ``calibration`` (the rule
    and objective that chose the thresholds, for re-calibration on integer scores); subclasses give ``step``."""

    system = ""
    path_names: list[str]

    def __init__(self, measure: str, paths: int) -> None:
        super().__init__()
        if measure not in MEASURES:
            raise ValueError(f"unknown confidence measure {measure!r}; allowed: {', '.join(MEASURES)}")
        self.measure = measure
        self.calibration: dict[str, Any] = {"rule": {"min_cost_at_drop": 0.5}, "objective": "energy_uj"}
        self.register_buffer("thresholds", torch.ones(paths - 1))

    @property
    def num_paths(self) -> int:
        return len(self.thresholds) + 1

    def step(self, k: int, carry: Tensor) -> tuple[Tensor, Tensor]:
        """Run path ``k`` on ``carry`` (the input for ``k = 0``): its logits and the next path's carry."""
        raise NotImplementedError

    def cost_units(self, input_shape: tuple[int, ...]) -> tuple[list[list[tuple[nn.Module, tuple[int, ...]]]],
                                                                 list[tuple[nn.Module, tuple[int, ...]]]]:
        """For the cost model: per path, the modules it adds with their input shapes; and the modules of
        the biggest path run alone (``edgeflow.methods.adaptive.costs.path_costs``)."""
        raise NotImplementedError

    def set_threshold(self, theta: float | Sequence[float]) -> None:
        """Set every decision's threshold to ``theta`` (one value) or one value per decision."""
        values = [float(theta)] * len(self.thresholds) if isinstance(theta, (int, float)) else list(theta)
        if len(values) != len(self.thresholds) or not all(0 <= v <= 1 for v in values):
            raise ValueError(f"thresholds must be {len(self.thresholds)} values in [0, 1], got {values}")
        self.thresholds.copy_(torch.tensor(values, dtype=self.thresholds.dtype))

    def path_logits(self, x: Tensor) -> list[Tensor]:
        """Every path's logits ``[N, C]`` on every sample of ``x``."""
        out, carry = [], x
        for k in range(self.num_paths):
            logits, carry = self.step(k, carry)
            out.append(logits)
        return out

    def route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The policy: logits ``[N, C]`` of the path serving each sample and that path's index ``[N]``."""
        n = x.shape[0]
        served = torch.full((n,), self.num_paths - 1, dtype=torch.long, device=x.device)
        out: Tensor | None = None
        idx = torch.arange(n, device=x.device)
        carry = x
        for k in range(self.num_paths):
            logits, carry = self.step(k, carry)
            if out is None:
                out = logits.new_zeros((n, logits.shape[1]))
            if k == self.num_paths - 1:
                out[idx] = logits
                break
            stop = confidence(logits, self.measure) > self.thresholds[k]
            out[idx[stop]] = logits[stop]
            served[idx[stop]] = k
            idx, carry = idx[~stop], carry[~stop]
            if idx.numel() == 0:
                break
        return out, served

    def forward(self, x: Tensor) -> Tensor:
        return self.route(x)[0]


class BigLittle(AdaptiveSystem):
    """Independent models run smallest first: ``parts[0]`` (little) ... ``parts[-1]`` (big)."""

    system = "big_little"

    def __init__(self, parts: Sequence[nn.Module], measure: str = "score_margin",
                 names: Sequence[str] | None = None) -> None:
        super().__init__(measure, len(parts))
        self.parts = nn.ModuleList(parts)
        self.path_names = list(names) if names else (["little", "big"] if len(parts) == 2
                                                      else [f"part{i}" for i in range(len(parts))])

    def step(self, k: int, carry: Tensor) -> tuple[Tensor, Tensor]:
        return self.parts[k](carry), carry

    def cost_units(self, input_shape: tuple[int, ...]) -> tuple[list[list[tuple[nn.Module, tuple[int, ...]]]],
                                                                 list[tuple[nn.Module, tuple[int, ...]]]]:
        """Per path, the modules it runs with their input shapes; and the biggest path run alone."""
        per_path = [[(part, tuple(input_shape))] for part in self.parts]
        return per_path, per_path[-1]


# ------------------------------------------------------------------------------------ early exit
def chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``model`` as a chain of units in execution order: its children, top-level ``nn.Sequential``
    children opened one level (``features.0``, ``features.1``, ...). Raises ``ValueError`` when
    running the chain does not reproduce ``model``'s output (a model that is not a plain chain)."""
    units: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            units += [(f"{name}.{sub}", m) for sub, m in child.named_children()]
        else:
            units.append((name, child))
    return units


def _verify_chain(model: nn.Module, units: list[tuple[str, nn.Module]], input_shape: tuple[int, ...]) -> None:
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    was = model.training
    model.eval()
    with torch.no_grad():
        want = model(x)
        h = x
        for _, unit in units:
            h = unit(h)
    model.train(was)
    if h.shape != want.shape or not torch.allclose(h, want, atol=1e-5):
        raise ValueError("the model is not a chain of its children (its forward does more than run them in "
                         "order); early exits need one")


def _weighted(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in module.modules())


def exit_points(model: nn.Module) -> list[str]:
    """The unit paths after which an exit may be attached: every unit holding a Conv/Linear but the last."""
    weighted = [name for name, unit in chain(model) if _weighted(unit)]
    return weighted[:-1]


def resolve_exit(model: nn.Module, point: str | float) -> str:
    """Exit ``point`` as a unit path: a path among ``exit_points`` or a fraction of depth ``f`` in
    (0, 1): after the ``⌊f·D + ½⌋``-th of the ``D`` weighted units (at least the first, at most the
    one before the last). Raises ``ValueError`` naming the allowed points."""
    points = exit_points(model)
    if isinstance(point, str):
        if point not in points:
            raise ValueError(f"exit point {point!r} is not a unit of the model; allowed: {', '.join(points)} "
                             "or a fraction of depth in (0, 1)")
        return point
    depth = len(points) + 1
    return points[min(max(int(point * depth + 0.5), 1), depth - 1) - 1]


HEAD_BINS = 4  # an exit head pools each feature map to 4 positions (1-D) or 2 × 2 (2-D): where matters


def _head(feature: Tensor, num_classes: int) -> nn.Module:
    """Exit head for features ``[N, C, ...]``: average-pool to ``HEAD_BINS`` positions (fewer if the
    map is smaller), flatten, linear; a plain linear on ``[N, C]``. The pool is an ``AvgPool`` of
    equal windows when the map divides into the bins (the form int8 export writes), an
    ``AdaptiveAvgPool`` otherwise (the same function)."""
    if feature.dim() == 2:
        return nn.Linear(feature.shape[1], num_classes)
    sizes = tuple(int(s) for s in feature.shape[2:])
    if feature.dim() == 3:
        bins: tuple[int, ...] = (min(HEAD_BINS, sizes[0]),)
    else:
        side = int(HEAD_BINS ** 0.5)
        bins = (min(side, sizes[0]), min(side, sizes[1]))
    if all(s % b == 0 for s, b in zip(sizes, bins)):
        kernel = tuple(s // b for s, b in zip(sizes, bins))
        pool: nn.Module = nn.AvgPool1d(kernel[0]) if len(bins) == 1 else nn.AvgPool2d(kernel)
    else:
        pool = nn.AdaptiveAvgPool1d(bins[0]) if len(bins) == 1 else nn.AdaptiveAvgPool2d(bins)
    return nn.Sequential(pool, nn.Flatten(), nn.Linear(feature.shape[1] * int(torch.tensor(bins).prod()), num_classes))


def _key(name: str) -> str:
    return name.replace(".", "_")


class EarlyExit(AdaptiveSystem):
    """A backbone cut into ``segments`` at exit points, with ``heads[k]`` after segment ``k`` (the last
    segment ends in the model's own classifier). ``exit_logits(x)`` gives every exit's logits for the
    weighted training loss."""

    system = "early_exit"

    def __init__(self, segments: Sequence[nn.Module], heads: Sequence[nn.Module], exits: Sequence[str],
                 measure: str = "score_margin") -> None:
        super().__init__(measure, len(segments))
        self.segments = nn.ModuleList(segments)
        self.heads = nn.ModuleList(heads)
        self.exits = list(exits)
        self.path_names = [f"exit{i + 1}" for i in range(len(exits))] + ["final"]

    @classmethod
    def from_model(cls, model: nn.Module, exits: Sequence[str | float], num_classes: int,
                   input_shape: tuple[int, ...], measure: str = "score_margin") -> EarlyExit:
        """Cut ``model`` (shares its modules: pass a copy) after each of ``exits`` (paths or fractions,
        ``resolve_exit``) and attach a head there. Raises ``ValueError`` for a model that is not a
        chain, an unknown point, or the same point twice."""
        units = chain(model)
        _verify_chain(model, units, input_shape)
        names = [resolve_exit(model, p) for p in exits]
        order = [n for n, _ in units]
        if len(set(names)) != len(names):
            raise ValueError(f"exit points {list(exits)} name the same unit twice ({', '.join(names)})")
        names.sort(key=order.index)
        cuts = [order.index(n) + 1 for n in names]
        bounds = [0, *cuts, len(units)]
        segments = [nn.Sequential(OrderedDict((_key(n), m) for n, m in units[a:b])) for a, b in zip(bounds, bounds[1:])]
        heads = []
        with torch.no_grad():
            h = torch.zeros(2, *input_shape)
            was = model.training
            model.eval()
            for seg in segments[:-1]:
                h = seg(h)
                heads.append(_head(h, num_classes))
            model.train(was)
        return cls(segments, heads, names, measure)

    def step(self, k: int, carry: Tensor) -> tuple[Tensor, Tensor]:
        h = self.segments[k](carry)
        return (self.heads[k](h) if k < len(self.heads) else h), h

    def exit_logits(self, x: Tensor) -> list[Tensor]:
        """Every exit's logits (the final classifier's last), for the weighted exit loss."""
        return self.path_logits(x)

    def cost_units(self, input_shape: tuple[int, ...]) -> tuple[list[list[tuple[nn.Module, tuple[int, ...]]]],
                                                                 list[tuple[nn.Module, tuple[int, ...]]]]:
        """Per path, the modules it adds (its segment, its head) with their input shapes; and the
        backbone alone (every segment, no head)."""
        shapes, h = [], torch.zeros(1, *input_shape)
        with torch.no_grad():
            was = self.training
            self.eval()
            for seg in self.segments:
                shapes.append(tuple(h.shape[1:]))
                h = seg(h)
            self.train(was)
        per_path = []
        for k, seg in enumerate(self.segments):
            units = [(seg, shapes[k])]
            if k < len(self.heads):
                units.append((self.heads[k], shapes[k + 1]))
            per_path.append(units)
        return per_path, [(seg, shapes[k]) for k, seg in enumerate(self.segments)]


class Backbone(nn.Module):
    """An early-exit system's segments run in order without the heads: its final path alone (the
    pipeline's model after an int8 early-exit system is built; blueprint: the system's step with
    ``backbone: true``)."""

    def __init__(self, segments: nn.ModuleList) -> None:
        super().__init__()
        self.segments = segments

    def forward(self, x: Tensor) -> Tensor:
        for seg in self.segments:
            x = seg(x)
        return x


# ------------------------------------------------------------------------------------ blueprints
def blueprint_step(system: AdaptiveSystem, parts: Sequence[list[dict]], **extra: Any) -> dict:
    """The blueprint step rebuilding ``system``: ``parts`` are the blueprints of its models (big/little:
    each part; early exit: the model it was cut from)."""
    return {"op": "adaptive", "system": system.system, "measure": system.measure, "parts": [list(p) for p in parts],
            "calibration": dict(system.calibration), **extra}


def rebuild(step: dict) -> AdaptiveSystem:
    """The system a ``blueprint_step`` describes (weights not loaded)."""
    from edgeflow.models.blueprint import rebuild as rebuild_model

    parts = [rebuild_model(p) for p in step["parts"]]
    if step["system"] == "big_little":
        system: AdaptiveSystem = BigLittle(parts, step["measure"], step.get("names"))
    elif step["system"] == "variable_width" and parts:   # int8: one quantized plain model per width
        from edgeflow.methods.adaptive.int8 import WidthModels

        system = WidthModels(parts, step["widths"], step["measure"])
    elif step["system"] == "variable_width":
        from edgeflow.methods.adaptive.slimmable import VariableWidth

        spec = step["spec"]
        system = VariableWidth(spec["name"], tuple(spec["input_shape"]), spec["num_classes"], spec["options"],
                               step["widths"], step["measure"])
    elif step["system"] == "early_exit":
        system = EarlyExit.from_model(parts[0], step["exits"], step["num_classes"], tuple(step["input_shape"]),
                                      step["measure"])
        if step.get("quantize") is not None:   # int8 segments and heads (the state dict brings their ranges)
            from edgeflow.methods.adaptive.int8 import chain_structure
            from edgeflow.methods.quantization import QuantConfig

            system = chain_structure(system, tuple(step["input_shape"]), QuantConfig(**step["quantize"]))
        if step.get("backbone"):
            return Backbone(system.segments)
    else:
        raise ValueError(f"unknown adaptive system {step['system']!r}")
    system.calibration = dict(step.get("calibration", system.calibration))
    return system
