"""Variable-width networks (slimmable, Yu et al. 2018; the seeds' variable-width NNs, Daghero et al.
2022): one set of weights run at several widths, each width with its own BatchNorm (switchable BN).

``VariableWidth(name, input_shape, num_classes, options, widths)`` builds zoo model ``name`` (one of
``SLIMMABLE``) at full width and turns every Conv / Linear into a slimmable layer — at width index
``k`` it uses the first ``⌈widths[k] · C⌉`` output channels (the classifier keeps all its outputs)
and as many input channels as it receives — and every BatchNorm into one BatchNorm per width. Path
``k`` of the system is the whole network at width ``k``, narrowest first; ``materialize(k)`` returns
the plain zoo model of that width with the sliced weights (exactly the same function), which the cost
model analyses. ``width_loss`` trains all widths at once (the sum of their cross-entropies).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.methods.adaptive.system import AdaptiveSystem

#: zoo models whose widths are one list option (the option scaled per width)
SLIMMABLE = {"cnn": "channels", "tcn": "channels", "mlp": "hidden"}


def scaled(value: int, fraction: float) -> int:
    """``⌈fraction · value⌉``, at least 1."""
    return max(1, math.ceil(fraction * value - 1e-9))


class _Slim:
    """Mixin of the slimmable layers: ``outs[k]`` output channels at width index ``active``."""

    outs: list[int]
    active: int = 0

    def sliced(self, cin: int) -> tuple[Tensor, Tensor | None]:
        out = self.outs[self.active]
        weight = self.weight[:out, :cin]
        return weight, (self.bias[:out] if self.bias is not None else None)


class SlimConv1d(_Slim, nn.Conv1d):
    def forward(self, x: Tensor) -> Tensor:
        w, b = self.sliced(x.shape[1])
        return F.conv1d(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class SlimConv2d(_Slim, nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        w, b = self.sliced(x.shape[1])
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class SlimLinear(_Slim, nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        w, b = self.sliced(x.shape[1])
        return F.linear(x, w, b)


class SwitchableBN(nn.Module):
    """One BatchNorm per width (``bns[k]`` normalises ``⌈widths[k] · C⌉`` channels)."""

    def __init__(self, bn: nn.Module, outs: Sequence[int]) -> None:
        super().__init__()
        self.bns = nn.ModuleList(type(bn)(c, eps=bn.eps, momentum=bn.momentum) for c in outs)
        self.active = 0
        for sub, c in zip(self.bns, outs):   # start from the full BN's statistics and affine parameters
            sub.load_state_dict({k: (v[:c] if v.dim() else v) for k, v in bn.state_dict().items()})

    def forward(self, x: Tensor) -> Tensor:
        return self.bns[self.active](x)


_SLIM = {nn.Conv1d: SlimConv1d, nn.Conv2d: SlimConv2d, nn.Linear: SlimLinear}


def _slim(module: nn.Module, outs: list[int]) -> nn.Module:
    cls = _SLIM[type(module)]
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)     # same parameters, same attributes
    new.outs = list(outs)
    new.active = 0
    return new


class VariableWidth(AdaptiveSystem):
    """A zoo model at ``widths`` (fractions in (0, 1], increasing; the last is normally 1.0)."""

    system = "variable_width"

    def __init__(self, name: str, input_shape: tuple[int, ...], num_classes: int, options: dict[str, Any],
                 widths: Sequence[float], measure: str = "score_margin", source: nn.Module | None = None) -> None:
        from edgeflow.models.zoo import build_model

        super().__init__(measure, len(widths))
        if name not in SLIMMABLE:
            raise ValueError(f"variable width needs a zoo model among {', '.join(SLIMMABLE)}, got {name!r}")
        self.spec = {"name": name, "input_shape": list(input_shape), "num_classes": int(num_classes),
                     "options": dict(options)}
        self.widths = [float(w) for w in widths]
        net = source if source is not None else build_model(name, tuple(input_shape), num_classes, **options)
        layers = [(n, m) for n, m in net.named_modules() if type(m) in _SLIM]
        last = layers[-1][0]
        for path, module in [(n, m) for n, m in net.named_modules()
                             if type(m) in _SLIM or isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]:
            full = module.num_features if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) else module.weight.shape[0]
            outs = [full if path == last else scaled(full, w) for w in self.widths]
            new = SwitchableBN(module, outs) if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) else _slim(module, outs)
            parent, _, attr = path.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, attr, new)
        self.net = net
        self.path_names = [f"w{round(100 * w)}" for w in self.widths]

    def set_width(self, k: int) -> None:
        """Run every slimmable layer and switchable BN at width index ``k``."""
        for m in self.net.modules():
            if isinstance(m, (_Slim, SwitchableBN)):
                m.active = k

    def step(self, k: int, carry: Tensor) -> tuple[Tensor, Tensor]:
        self.set_width(k)
        return self.net(carry), carry

    def materialize(self, k: int) -> nn.Module:
        """The plain zoo model at width ``k`` with the sliced weights and BN ``k`` (same outputs)."""
        from edgeflow.models.zoo import build_model

        spec = self.spec
        key = SLIMMABLE[spec["name"]]
        options = {**spec["options"], key: [scaled(c, self.widths[k]) for c in spec["options"][key]]}
        plain = build_model(spec["name"], tuple(spec["input_shape"]), spec["num_classes"], **options)
        own = dict(self.net.named_modules())
        with torch.no_grad():
            for path, module in plain.named_modules():
                src = own.get(path)
                if isinstance(src, SwitchableBN):
                    module.load_state_dict(src.bns[k].state_dict())
                elif isinstance(src, _Slim):
                    module.weight.copy_(src.weight[:module.weight.shape[0], :module.weight.shape[1]])
                    if module.bias is not None:
                        module.bias.copy_(src.bias[:module.bias.shape[0]])
        return plain.train(self.training)

    def cost_units(self, input_shape: tuple[int, ...]) -> tuple[list[list[tuple[nn.Module, tuple[int, ...]]]],
                                                                 list[tuple[nn.Module, tuple[int, ...]]]]:
        """Per path, the plain model of that width; and the widest alone."""
        per_path = [[(self.materialize(k), tuple(input_shape))] for k in range(self.num_paths)]
        return per_path, per_path[-1]


def width_loss(model: VariableWidth, x: Tensor, y: Tensor) -> Tensor:
    """Σ over widths of the cross-entropy at that width (every width trained on every batch)."""
    return sum(F.cross_entropy(model.step(k, x)[0], y) for k in range(model.num_paths))
