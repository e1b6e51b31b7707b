"""PIT: a masked supernet over a trained model's channels and, for Conv1d, receptive field and dilation.

``PIT(model, input_shape)`` wraps a copy of ``model``:

- every prunable channel group of :func:`edgeflow.graph.channel_groups` (torch.fx data flow: the
  producers whose channels go jointly, residual-tied ones included, their BatchNorms and depthwise
  convs) gets one :class:`~.masks.ChannelMask`; forward hooks multiply the outputs of the group's
  producers, BatchNorms and depthwise convs by it, so a dropped channel is exactly zero wherever it
  flows (ReLU, pooling and adds keep zeros zero; activations with ``f(0) ≠ 0`` would not);
- with ``search_kernel`` / ``search_dilation``, every "same"-padded, stride-1 float Conv1d with an
  odd kernel ≥ 3 (:func:`time_searchable`) gets a :class:`~.masks.TapMask` on its weight (a
  ``torch.nn.utils.parametrize`` parametrization).

``arch_parameters()`` are the mask parameters, ``weight_parameters()`` the rest. ``soft_cost(hw)``
is the cost of the architecture the masks select (binarised masks, straight-through gradients)
through the one differentiable formula (``edgeflow.hardware.differentiable.soft_model_cost``) on the
nominal analysis of the seed model: equal to ``hw.estimate(analyze(pit.export(), ...))`` on dense
targets. ``export()`` returns a plain module of the seed's classes — fewer channels
(:func:`edgeflow.methods.pruning.structured.thin`), smaller kernels, new dilations — computing what
the masked supernet computes, with a blueprint ``resize`` step so a saved state reloads it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from edgeflow.graph import ChannelGroup, channel_groups, set_submodule
from edgeflow.hardware.differentiable import soft_model_cost
from edgeflow.hardware.graph import ModelCost, analyze
from edgeflow.methods.dnas.masks import ChannelMask, TapMask
from edgeflow.models import blueprint


def time_searchable(m: nn.Module) -> bool:
    """A Conv1d whose taps PIT can mask and shrink exactly: stride 1, odd kernel ≥ 3, zero padding
    ``dilation·(K−1)/2`` on both sides ("same" output length)."""
    if type(m) is not nn.Conv1d:  # float layers only (a quantized subclass keeps its own weight path)
        return False
    (k,), (s,), (d,) = m.kernel_size, m.stride, m.dilation
    pad = m.padding
    same = pad == "same" or (isinstance(pad, tuple) and pad == (d * (k - 1) // 2,))
    return s == 1 and k >= 3 and k % 2 == 1 and same and m.padding_mode == "zeros"


class _Taps(nn.Module):
    """Parametrization ``weight · tap_mask`` (broadcast over the kernel axis)."""

    def __init__(self, mask: TapMask) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, w: Tensor) -> Tensor:
        return w * self.mask().to(w.dtype)


class PIT(nn.Module):
    """The masked supernet of ``model`` (see the module docstring). ``model`` is not changed.

    ``exclude(name)`` True keeps that producer's channels (its group whole); ``default_bits`` is the
    bit-width the cost assumes for layers without quantizers (8: as deployed at int8); every group keeps
    at least ``min_channels`` channels.
    """

    def __init__(self, model: nn.Module, input_shape: Iterable[int], *, search_channels: bool = True,
                 search_kernel: bool = False, search_dilation: bool = False, exclude: Any = None,
                 default_bits: int = 8, min_channels: int = 1) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.model = copy.deepcopy(model)
        self.nominal: ModelCost = analyze(self.model, self.input_shape, default_bits)
        self.groups: list[ChannelGroup] = [g for g in channel_groups(self.model, self.input_shape, exclude)
                                           if g.prunable] if search_channels else []
        self.channel_masks = nn.ModuleList(ChannelMask(g.channels, _initial_theta(self.model, g), min_channels)
                                           for g in self.groups)
        self._hooks: list[tuple[str, int]] = []
        modules = dict(self.model.named_modules())
        for gi, g in enumerate(self.groups):
            for name in g.producers + g.bns + g.depthwise:
                handle = modules[name].register_forward_hook(self._masker(gi))
                self._hooks.append((name, handle.id))
        self.tap_names: list[str] = []
        self.tap_masks = nn.ModuleDict()
        if search_kernel or search_dilation:
            for name, m in modules.items():
                if time_searchable(m):
                    mask = TapMask(m.kernel_size[0], search_kernel, search_dilation)
                    if mask.beta is None and mask.gamma is None:
                        continue
                    key = f"t{len(self.tap_names)}"
                    self.tap_masks[key] = mask
                    self.tap_names.append(name)
                    parametrize.register_parametrization(m, "weight", _Taps(mask))

    def _masker(self, gi: int):  # noqa: ANN202 - a forward hook
        def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
            mask = self.channel_masks[gi]()
            return out * mask.to(out.dtype).reshape(1, -1, *([1] * (out.dim() - 2)))
        return hook

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    # ------------------------------------------------------------------ parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        """The mask parameters (the architecture), for their own optimiser."""
        return [*self.channel_masks.parameters(), *self.tap_masks.parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other trainable parameter (the network's weights)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch and p.requires_grad]

    # ------------------------------------------------------------------ cost
    def _scales(self) -> dict[str, tuple[Tensor, Tensor, Tensor | None]]:
        """Per analysed layer: (input channel scale, output channel scale, kernel taps or None)."""
        one = torch.ones((), dtype=torch.float64)
        group_of = {}
        for gi, g in enumerate(self.groups):
            for name in g.producers + g.depthwise:
                group_of[name] = gi
        kept = [m().to(torch.float64).sum() / m.theta.numel() for m in self.channel_masks]
        taps = {name: self.tap_masks[f"t{i}"]().to(torch.float64).sum() for i, name in enumerate(self.tap_names)}
        out_scale: list[Tensor] = []
        scales = {}
        for layer in self.nominal.layers:
            src = layer.inputs[0] if layer.inputs else -1
            s_in = out_scale[src] if src >= 0 else one
            if layer.name in group_of:
                s_out = kept[group_of[layer.name]]
            elif layer.weights or layer.kind == "concat":
                s_out = one
            else:  # channel-preserving (pool, add, activation, standalone BN)
                s_out = s_in
            out_scale.append(s_out)
            scales[layer.name] = (s_in, s_out, taps.get(layer.name))
        return scales

    def soft_channels(self) -> dict[str, tuple]:
        """``channels`` for ``soft_model_cost``: soft ``(cin, cout[, taps])`` of every analysed layer."""
        out = {}
        scales = self._scales()
        for layer in self.nominal.layers:
            s_in, s_out, taps = scales[layer.name]
            linear = layer.kind == "linear"
            cin0 = layer.input_shapes[0][-1 if linear else 0] if layer.input_shapes else 1
            cout0 = layer.output_shape[-1 if linear else 0] if layer.output_shape else 1
            out[layer.name] = (s_in * cin0, s_out * cout0) + ((taps,) if taps is not None else ())
        return out

    def soft_cost(self, hw: Any) -> dict[str, Tensor]:
        """Soft totals (``latency_ms``, ``energy_uj``, ``flash_bytes``, ``macs``, ``params``) of the
        architecture the masks select, with gradients to the mask parameters."""
        return soft_model_cost(hw, self.nominal, channels=self.soft_channels())

    # ------------------------------------------------------------------ result
    def architecture(self) -> list[dict[str, Any]]:
        """One row per searched layer: its channels before/after and, for Conv1d, kernel and dilation."""
        rows = []
        kept = {}
        for g, m in zip(self.groups, self.channel_masks):
            n = int(m.kept().numel())
            for name in g.producers:
                kept[name] = (g.channels, n)
        taps = {name: self.tap_masks[f"t{i}"] for i, name in enumerate(self.tap_names)}
        for name, m in self.model.named_modules():
            if not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                continue
            c0 = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            c0, c1 = kept.get(name, (c0, c0))
            row: dict[str, Any] = {"layer": name, "channels_before": c0, "channels": c1}
            if isinstance(m, nn.Conv1d):
                k0, d0 = m.kernel_size[0], m.dilation[0]
                k1, d1 = k0, d0
                if name in taps:
                    idx, step = taps[name].export_taps()
                    k1, d1 = len(idx), d0 * step if len(idx) > 1 else 1
                row.update(kernel_before=k0, kernel=k1, dilation_before=d0, dilation=d1)
            rows.append(row)
        return rows

    @torch.no_grad()
    def export(self) -> nn.Module:
        """A plain, thinner copy of the seed model computing exactly what the masked supernet computes."""
        model = copy.deepcopy(self.model)
        modules = dict(model.named_modules())
        for name, hook_id in self._hooks:
            modules[name]._forward_hooks.pop(hook_id, None)
        for name in self.tap_names:  # a plain Conv1d holding the masked weight (the copy shares its
            set_submodule(model, name, _plain_conv1d(modules[name]))  # parametrized class with self.model)
        reference = copy.deepcopy(model)
        for i, name in enumerate(self.tap_names):
            idx, step = self.tap_masks[f"t{i}"].export_taps()
            conv = model.get_submodule(name)
            d = conv.dilation[0] * step if len(idx) > 1 else 1
            k = len(idx)
            conv.weight = nn.Parameter(conv.weight[:, :, idx].clone())
            conv.kernel_size, conv.dilation, conv.padding = (k,), (d,), (d * (k - 1) // 2,)
        keep = {g.name: m.kept() for g, m in zip(self.groups, self.channel_masks)}
        thin = _thin(model, self.groups, keep)  # module names are the seed's: the groups still hold
        steps = blueprint.blueprint_of(reference)
        blueprint.set_blueprint(thin, None if steps is None else [*steps, blueprint.resize_step(reference, thin)])
        return thin.train(self.training)


def _initial_theta(model: nn.Module, group: ChannelGroup) -> Tensor:
    """``1 + importance / max importance`` per channel (L1 filter norms over the group's producers)."""
    from edgeflow.methods.pruning.structured import channel_importance

    imp = channel_importance(model, group, "l1")
    return 1.0 + imp / imp.max().clamp_min(1e-12)


def _plain_conv1d(m: nn.Conv1d) -> nn.Conv1d:
    """A plain ``nn.Conv1d`` equal to the parametrized ``m`` (weight = its masked weight, same buffers)."""
    plain = nn.Conv1d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                      m.bias is not None, m.padding_mode)
    plain.weight = nn.Parameter(m.weight.detach().clone())
    if m.bias is not None:
        plain.bias = nn.Parameter(m.bias.detach().clone())
    for key, buf in m.named_buffers(recurse=False):
        plain.register_buffer(key, buf.clone())
    return plain.train(m.training)


def _thin(model: nn.Module, groups: list[ChannelGroup], keep: dict[str, Tensor]) -> nn.Module:
    from edgeflow.methods.pruning.structured import thin

    return thin(model, groups, keep)
