"""Per-layer cost analysis of any ``nn.Module``: ``analyze(model, input_shape) -> ModelCost``.

How it works: one forward pass of a zero input (batch 1, eval mode, no grad) with forward hooks on
every module plus a ``TorchFunctionMode``. Known leaf modules (Conv1d/2d, Linear and their
subclasses, BatchNorm, pooling, activations, Flatten/Dropout/Identity, quantizer modules) are
recorded from their hooks; torch functions called *outside* a known leaf (``a + b``, ``torch.cat``,
``torch.flatten``, ``F.relu``, ``F.conv2d`` on a user parameter, ``x.mean((2, 3))``, ...) are recorded
from the mode. Tensors are followed by identity, so each layer knows its producers (the graph):
no tracing, no name matching, works on unregistered models with Python control flow. (That is why
it does not use the fx tracer of ``edgeflow.graph``: analysis must cost any model that runs, also
ones fx cannot trace. It shares the tracer's quantizer rule, ``edgeflow.graph.is_quantizer``.)

Counting conventions (match the MLPerf Tiny figures):

- ``macs``: multiply-accumulates of Conv/Linear only, ``out_elements · in_channels/groups · kernel``
  (Linear: ``out_elements · in_features``); bias adds are not MACs.
- ``ops``: other elementary operations (pooling window taps, residual-add elements, standalone
  activation / BatchNorm elements). Not in ``macs``; the hardware model charges them at the MAC rate.
- BatchNorm whose input is a Conv/Linear output is *folded* into it: no cost, and the layer gains a
  bias of ``out_channels`` if it had none. ReLU/ReLU6/clamp right after a Conv/Linear/add/pool is
  *fused* (TFLite fuses these activations). Flatten/view/reshape/dropout/identity are free aliases.
  Folded/fused op names are listed in ``LayerCost.fused``.
- ``params`` = ``weights + biases`` as deployed (after folding). ``torch_params`` = the PyTorch
  parameter count of the modules involved (BatchNorm γ/β included) — what other counters report.
- Weight bits: ``module.weight_quantizer.bits`` if present, else ``default_bits`` (32 = float).
  Activation bits: ``bits`` of another child quantizer of the layer (any child with an int ``bits``),
  else of a standalone quantizer module upstream, else the producer's output bits, else
  ``default_bits``. Activation bytes are ``ceil(elements · bits / 8)``.
- Sparsity: from the ``weight_mask`` buffer if present, else exact zeros in the weight; a quantized
  layer's weight is its fake-quantized one, whose zeros are the integer zero codes (masked weights
  and weights that round to 0), as in the exported file.
- ``live_bytes``: bytes of all tensors alive while the layer runs (its inputs, its output and every
  earlier output still needed later) — a liveness bound on peak RAM without arena fragmentation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from edgeflow.graph.trace import is_quantizer
from edgeflow.hardware.storage import storage_bytes

CONV_KINDS = ("conv1d", "conv2d", "dwconv1d", "dwconv2d", "linear")
FUSE_ACT_HOSTS = CONV_KINDS + ("add", "maxpool", "avgpool", "batchnorm", "concat")

_ALIAS_FUNCS = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "dropout", "clone",
                "detach", "view_as", "reshape_as", "alpha_dropout", "feature_alpha_dropout", "dropout1d",
                "dropout2d", "dropout3d"}
_FUSABLE_ACT_FUNCS = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clip", "clamp_min"}
_ACT_FUNCS = {"sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu", "hardswish", "hardsigmoid",
              "leaky_relu", "elu", "mish", "sigmoid_", "tanh_"}
_ADD_FUNCS = {"add", "add_", "__add__", "__iadd__", "__radd__", "sub", "sub_", "__sub__", "__isub__"}
_MUL_FUNCS = {"mul", "mul_", "__mul__", "__imul__", "__rmul__"}
_CAT_FUNCS = {"cat", "concat", "concatenate", "stack"}

_FUSABLE_ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
_ACT_MODULES = (nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax, nn.GELU, nn.SiLU, nn.Hardswish,
                nn.Hardsigmoid, nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU)
_ALIAS_MODULES = (nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                 nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_BN_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class LayerCost:
    """Cost of one layer (sizes per sample). Bytes are ints; see the module docstring."""

    name: str
    kind: str
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    macs: int = 0
    ops: int = 0
    weights: int = 0
    biases: int = 0
    torch_params: int = 0
    weight_bits: int = 32
    act_bits: int = 32
    weight_bytes: int = 0           # dense, at weight_bits
    bias_bytes: int = 0             # 4 bytes each (int32 when quantized, float32 otherwise)
    storage: dict[str, int] = field(default_factory=dict)   # storage_bytes() of the weight
    sparsity: float = 0.0
    input_bytes: int = 0
    output_bytes: int = 0
    live_bytes: int = 0
    inputs: list[int] = field(default_factory=list)          # producer layer indices (-1 = model input)
    fused: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def activation_bytes(self) -> int:
        return self.input_bytes + self.output_bytes

    def row(self) -> dict[str, Any]:
        """Flat dict for CSV/tables."""
        d = asdict(self)
        d.pop("storage")
        d["params"] = self.params
        d["activation_bytes"] = self.activation_bytes
        d["input_shapes"] = ";".join("x".join(map(str, s)) for s in self.input_shapes)
        d["output_shape"] = "x".join(map(str, self.output_shape))
        d["inputs"] = ";".join(map(str, self.inputs))
        d["fused"] = "+".join(self.fused)
        d["attrs"] = " ".join(f"{k}={v}" for k, v in self.attrs.items())
        return d


@dataclass
class ModelCost:
    """Per-layer costs of a model in execution order, and totals."""

    layers: list[LayerCost]
    input_shape: tuple[int, ...]
    input_bytes: int = 0

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def ops(self) -> int:
        return sum(layer.ops for layer in self.layers)

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def biases(self) -> int:
        return sum(layer.biases for layer in self.layers)

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def torch_params(self) -> int:
        return sum(layer.torch_params for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def peak_activation_bytes(self) -> int:
        return max((layer.live_bytes for layer in self.layers), default=self.input_bytes)

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights over all Conv/Linear weights."""
        total = self.weights
        zeros = sum(layer.sparsity * layer.weights for layer in self.layers)
        return zeros / total if total else 0.0

    def __getitem__(self, name: str) -> LayerCost:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _bytes(elements: int, bits: int) -> int:
    return int(math.ceil(elements * bits / 8))


def _quantizer_bits(module: nn.Module | None) -> tuple[int | None, int | None]:
    """(weight bits, activation bits) read from a layer's quantizer children, None if absent."""
    if module is None:
        return None, None
    wq = getattr(module, "weight_quantizer", None)
    wbits = getattr(wq, "bits", None) if wq is not None else None
    abits = None
    for child in module.children():
        if child is wq:
            continue
        b = getattr(child, "bits", None)
        if isinstance(b, int) and not isinstance(b, bool):
            abits = b
            break
    return (int(wbits) if wbits is not None else None), abits


def _deployed_weight(module: nn.Module) -> Tensor:
    """The weight a layer deploys: a quantized layer's fake-quantized weight (weights whose integer
    code is 0 are exactly 0, as in the export), else its float weight."""
    quantized = getattr(module, "quantized_weight", None)
    if quantized is None:
        return module.weight
    with torch.no_grad():
        return quantized()


class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module, default_bits: int) -> None:
        super().__init__()
        self.model = model
        self.default_bits = default_bits
        self.layers: list[LayerCost] = []
        self.producer: dict[int, int] = {}      # id(tensor) -> layer index (-1 = model input)
        self.tensor_bits: dict[int, int] = {}   # id(tensor) -> bits of its elements
        self.keep: list[Tensor] = []            # keeps tensors alive so ids stay unique
        self.leaf_depth = 0
        self.stack: list[str] = []
        self.names = {m: n for n, m in model.named_modules()}
        self.used_names: dict[str, int] = {}
        self.input_shape: tuple[int, ...] = ()
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ tensor bookkeeping
    def _track(self, t: Any, layer: int, bits: int) -> None:
        for x in _tensors(t):
            self.producer[id(x)] = layer
            self.tensor_bits[id(x)] = bits
            self.keep.append(x)

    def _src(self, t: Tensor) -> int:
        return self.producer.get(id(t), -1)

    def _unique(self, base: str) -> str:
        k = self.used_names.get(base, 0)
        self.used_names[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def _fn_name(self, op: str) -> str:
        prefix = self.stack[-1] if self.stack and self.stack[-1] else ""
        return self._unique(f"{prefix}.{op}" if prefix else op)

    # ------------------------------------------------------------------ recording
    def _in_bits(self, inputs: list[Tensor]) -> int:
        for t in inputs:
            if id(t) in self.tensor_bits:
                return self.tensor_bits[id(t)]
        return self.default_bits

    def _alias(self, inp: Tensor, out: Any, label: str | None = None, bits: int | None = None) -> None:
        src = self._src(inp)
        b = bits if bits is not None else self.tensor_bits.get(id(inp), self.default_bits)
        self._track(out, src, b)
        if label and src >= 0:
            self.layers[src].fused.append(label)

    def _add_layer(self, layer: LayerCost, inputs: list[Tensor], out: Tensor) -> int:
        layer.inputs = [self._src(t) for t in inputs]
        layer.input_shapes = [tuple(t.shape[1:]) for t in inputs]
        layer.output_shape = tuple(out.shape[1:])
        layer.input_bytes = sum(_bytes(t[0].numel(), layer.act_bits) for t in inputs)
        layer.output_bytes = _bytes(out[0].numel(), layer.act_bits)
        if not layer.weights:  # no weights: runs at its activation precision
            layer.weight_bits = layer.act_bits
        self.layers.append(layer)
        idx = len(self.layers) - 1
        self._track(out, idx, layer.act_bits)
        return idx

    def _fusable_host(self, t: Tensor, kinds: tuple[str, ...]) -> LayerCost | None:
        src = self._src(t)
        if src < 0:
            return None
        host = self.layers[src]
        return host if host.kind in kinds else None

    def record_weighted(self, name: str, module: nn.Module | None, x: Tensor, out: Tensor, weight: Tensor,
                        bias: Tensor | None, groups: int, attrs: dict[str, Any]) -> None:
        wbits, abits = _quantizer_bits(module)
        wbits = wbits if wbits is not None else self.default_bits
        abits = abits if abits is not None else self._in_bits([x])
        if weight.dim() == 2:
            kind = "linear"
            macs = out[0].numel() * weight.shape[1]
        else:
            dims = weight.dim() - 2
            cin = x.shape[1]
            depthwise = groups > 1 and groups == cin
            kind = ("dwconv" if depthwise else "conv") + f"{dims}d"
            macs = out[0].numel() * (cin // groups) * math.prod(weight.shape[2:])
            attrs = {**attrs, "groups": groups}
        attrs = {**attrs, "bias": bias is not None}
        quantized = hasattr(module, "quantized_weight")  # its weight is the deployed one: zeros are exact
        mask = getattr(module, "weight_mask", None) if module is not None and not quantized else None
        w = weight.detach()
        sizes = storage_bytes(w, wbits, mask=mask)
        nnz = sizes["nnz"]
        tp = sum(p.numel() for p in module.parameters(recurse=False)) if module is not None else \
            int(weight.numel() + (bias.numel() if bias is not None else 0))
        layer = LayerCost(
            name=name, kind=kind, input_shapes=[], output_shape=(), macs=int(macs),
            weights=int(w.numel()), biases=int(bias.numel()) if bias is not None else 0, torch_params=int(tp),
            weight_bits=int(wbits), act_bits=int(abits), weight_bytes=sizes["dense"],
            storage=sizes, sparsity=1.0 - nnz / w.numel() if w.numel() else 0.0, attrs=attrs,
        )
        layer.bias_bytes = 4 * layer.biases
        self._add_layer(layer, [x], out)

    def record_bn(self, name: str, module: nn.Module | None, x: Tensor, out: Tensor) -> None:
        host = self._fusable_host(x, CONV_KINDS)
        if host is not None and "bn" not in host.attrs and "act" not in host.attrs:
            host.attrs["bn"] = True
            host.fused.append(name)
            if host.biases == 0:
                host.biases = int(out.shape[1])
                host.bias_bytes = 4 * host.biases
            if module is not None:
                host.torch_params += sum(p.numel() for p in module.parameters(recurse=False))
            self._alias(x, out)
            return
        bits = self._in_bits([x])
        tp = sum(p.numel() for p in module.parameters(recurse=False)) if module is not None else 0
        self._add_layer(LayerCost(name, "batchnorm", [], (), ops=out[0].numel(), act_bits=bits, torch_params=tp),
                        [x], out)

    def record_act(self, name: str, x: Tensor, out: Tensor, fusable: bool, op: str) -> None:
        host = self._fusable_host(x, FUSE_ACT_HOSTS) if fusable else None
        if host is not None and "act" not in host.attrs:
            host.attrs["act"] = op
            host.fused.append(name)
            self._alias(x, out)
            return
        self._add_layer(LayerCost(name, "activation", [], (), ops=out[0].numel(), act_bits=self._in_bits([x]),
                                  attrs={"op": op}), [x], out)

    def record_pool(self, name: str, x: Tensor, out: Tensor, kind: str, window: int) -> None:
        self._add_layer(LayerCost(name, kind, [], (), ops=int(out[0].numel() * window), act_bits=self._in_bits([x]),
                                  attrs={"window": window}), [x], out)

    # ------------------------------------------------------------------ module hooks
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        self.stack.append(self.names.get(module, ""))
        if _is_leaf(module):
            self.leaf_depth += 1

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        name = self.stack.pop() if self.stack else ""
        if not _is_leaf(module):
            return
        self.leaf_depth -= 1
        if self.leaf_depth > 0:
            return
        name = self._unique(name or type(module).__name__.lower())
        x = next((a for a in args if isinstance(a, Tensor)), None)
        if x is None or not isinstance(out, Tensor):
            return
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            attrs = {"kernel": tuple(module.kernel_size), "stride": tuple(module.stride),
                     "padding": module.padding if isinstance(module.padding, str) else tuple(module.padding),
                     "dilation": tuple(module.dilation)}
            self.record_weighted(name, module, x, out, _deployed_weight(module), module.bias, module.groups, attrs)
        elif isinstance(module, nn.Linear):
            self.record_weighted(name, module, x, out, _deployed_weight(module), module.bias, 1, {})
        elif isinstance(module, _BN_MODULES):
            self.record_bn(name, module, x, out)
        elif isinstance(module, _FUSABLE_ACT_MODULES):
            self.record_act(name, x, out, True, type(module).__name__.lower())
        elif isinstance(module, _ACT_MODULES):
            self.record_act(name, x, out, False, type(module).__name__.lower())
        elif isinstance(module, _POOL_MODULES):
            kind = "maxpool" if "Max" in type(module).__name__ else "avgpool"
            window = max(1, x[0].numel() // max(1, out[0].numel()) * 1) if "Adaptive" in type(module).__name__ \
                else math.prod(_tuple(module.kernel_size, x.dim() - 2))
            self.record_pool(name, x, out, kind, window)
        elif isinstance(module, _ALIAS_MODULES):
            self._alias(x, out, None if isinstance(module, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d))
                        else name)
        elif is_quantizer(module):
            self._alias(x, out, None, bits=int(module.bits))
        else:  # unknown leaf with parameters: count its parameters, no MACs
            tp = sum(p.numel() for p in module.parameters(recurse=False))
            self.warnings.append(f"{name}: {type(module).__name__} is not modelled (params counted, 0 MACs)")
            self._add_layer(LayerCost(name, "unknown", [], (), weights=tp, torch_params=tp,
                                      weight_bits=self.default_bits, act_bits=self._in_bits([x]),
                                      weight_bytes=_bytes(tp, self.default_bits)), [x], out)

    # ------------------------------------------------------------------ functional ops
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.leaf_depth > 0:
            return out
        try:
            self._functional(func, args, kwargs, out)
        except Exception as e:  # never break the user's forward pass
            self.warnings.append(f"could not record {getattr(func, '__name__', func)}: {e}")
        return out

    def _functional(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        fname = getattr(func, "__name__", "")
        name = fname if fname.startswith("__") else fname.lstrip("_")
        if not isinstance(out, Tensor) or out.dim() == 0 or name in ("get", "set"):
            return
        tensors = [a for a in args if isinstance(a, Tensor)]
        x = tensors[0] if tensors else None
        if name in ("conv1d", "conv2d") and len(args) >= 2:
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            self.record_weighted(self._fn_name(name), None, args[0], out, args[1], bias, int(groups), {})
        elif name == "linear" and len(args) >= 2:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            self.record_weighted(self._fn_name(name), None, args[0], out, args[1], bias, 1, {})
        elif name == "batch_norm" and x is not None:
            self.record_bn(self._fn_name(name), None, x, out)
        elif name in _ALIAS_FUNCS and x is not None:
            self._alias(x, out)
        elif name in _FUSABLE_ACT_FUNCS and x is not None:
            self.record_act(self._fn_name(name.rstrip("_")), x, out, True, name)
        elif name in _ACT_FUNCS and x is not None:
            self.record_act(self._fn_name(name.rstrip("_")), x, out, False, name)
        elif name in _ADD_FUNCS | _MUL_FUNCS:
            if len(tensors) >= 2 and all(t.numel() > 1 for t in tensors[:2]):
                kind = "add" if name in _ADD_FUNCS else "mul"
                self._add_layer(LayerCost(self._fn_name(kind), kind, [], (), ops=out[0].numel(),
                                          act_bits=self._in_bits(tensors[:2])), tensors[:2], out)
            elif x is not None and id(x) in self.producer:  # tensor-scalar: free rescale, alias
                self._alias(x, out)
        elif name in _CAT_FUNCS and args and isinstance(args[0], (list, tuple)):
            ins = [t for t in args[0] if isinstance(t, Tensor)]
            self._add_layer(LayerCost(self._fn_name("concat"), "concat", [], (), act_bits=self._in_bits(ins)), ins, out)
        elif ("max_pool" in name or "avg_pool" in name) and x is not None:
            kind = "maxpool" if "max" in name else "avgpool"
            if "adaptive" in name:
                window = max(1, x[0].numel() // max(1, out[0].numel()))
            else:
                k = args[1] if len(args) > 1 else kwargs.get("kernel_size")
                window = math.prod(_tuple(k, x.dim() - 2))
            self.record_pool(self._fn_name(kind), x, out, kind, window)
        elif name in ("mean", "amax", "sum") and x is not None and id(x) in self.producer and x.dim() >= 3:
            kind = "maxpool" if name == "amax" else "avgpool"
            self.record_pool(self._fn_name(kind), x, out, kind, max(1, x[0].numel() // max(1, out[0].numel())))


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _tensors(t: Any) -> list[Tensor]:
    if isinstance(t, Tensor):
        return [t]
    if isinstance(t, (list, tuple)):
        return [x for x in t if isinstance(x, Tensor)]
    return []


def _is_leaf(m: nn.Module) -> bool:
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear) + _BN_MODULES + _FUSABLE_ACT_MODULES + _ACT_MODULES
                  + _POOL_MODULES + _ALIAS_MODULES):
        return True
    if is_quantizer(m):
        return True
    # unknown module holding its own parameters and no children: opaque leaf
    return not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))


def analyze(model: nn.Module, input_shape: tuple[int, ...] | list[int], default_bits: int = 32) -> ModelCost:
    """Per-layer cost of ``model`` on one input of ``input_shape`` (no batch dimension).

    ``default_bits`` is the bit-width assumed for weights and activations of layers without
    quantizers (32 = float32; pass 8 to cost a float model as if deployed at int8).
    """
    input_shape = tuple(int(s) for s in input_shape)
    rec = _Recorder(model, int(default_bits))
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(rec.pre_hook))
        handles.append(m.register_forward_hook(rec.post_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        x = torch.zeros((1, *input_shape), dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32,
                        device=p.device if p is not None else "cpu")
        rec.producer[id(x)] = -1
        rec.keep.append(x)
        with torch.no_grad(), rec:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    layers = rec.layers
    # the model input is read at the first consumer's activation bits
    first = next((layer for layer in layers if -1 in layer.inputs), None)
    in_bits = first.act_bits if first is not None else int(default_bits)
    in_bytes = _bytes(math.prod(input_shape), in_bits)
    _liveness(layers, in_bytes)
    cost = ModelCost(layers=layers, input_shape=input_shape, input_bytes=in_bytes)
    cost.warnings = rec.warnings  # type: ignore[attr-defined]
    return cost


def _liveness(layers: list[LayerCost], input_bytes: int) -> None:
    last_use = {-1: -1}
    for i, layer in enumerate(layers):
        last_use.setdefault(i, i)
        for src in layer.inputs:
            last_use[src] = max(last_use.get(src, i), i)
    for i, layer in enumerate(layers):
        live = layer.output_bytes
        if last_use[-1] >= i:
            live += input_bytes
        live += sum(layers[j].output_bytes for j in range(i) if last_use[j] >= i)
        layer.live_bytes = int(live)
