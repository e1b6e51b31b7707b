"""A model's blueprint: how to rebuild its architecture without pickling code.

Saving an ``nn.Module`` whole would pickle code (a GraphModule's even runs generated source on
load). edgeflow instead records, on the model, the steps that made its structure — a JSON list —
and saves the weights as a plain state dict (``torch.load(weights_only=True)``):

- ``{"op": "zoo", "name", "input_shape", "num_classes", "options"}`` — ``build_model(...)``;
- ``{"op": "target", "target", "kwargs"}`` — a user's model: the import path ``target`` called with
  ``kwargs`` (``edgeflow.models.target``; an import path, never pickled code);
- ``{"op": "resize", "modules": {name: {"attrs": {...}, "tensors": {name: shape}}}}`` — structured
  thinning and DNAS export: the layer attributes (widths; kernel size, dilation, padding) and
  parameter/buffer shapes that changed;
- ``{"op": "quantize", "input_shape", "config": {...}, "bn"}`` — ``quantize_model(model, input_shape,
  QuantConfig(**config), bn=bn)``;
- ``{"op": "fold_simulated_bn"}`` — QAT's BatchNorm folding at the end of ``bn: simulate``;
- ``{"op": "identity", "modules": [name, ...]}`` — modules replaced by ``nn.Identity`` (a DNAS
  supernet skipped those blocks);
- ``{"op": "fold_bn"}`` — BatchNorm folded into the float layers it follows and replaced by
  ``nn.Identity`` (``fold_batchnorm``; the cluster stage).
- ``{"op": "adaptive", "system", "measure", "parts": [blueprint, ...], ...}`` — an adaptive system
  (``edgeflow.methods.adaptive.system.rebuild``) built from its parts' own blueprints.

The first step (``zoo``, ``target`` or ``adaptive``) builds the model; methods that change a model's structure
append their step (``record``); ``rebuild`` replays the steps, ``load_weights`` fills in the state
dict (registering buffers such as pruning masks that the replay did not create) and the boolean
flags of every module (observers frozen, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from torch import nn

KEY = "edgeflow_blueprint"
RESIZABLE_ATTRS = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features",
                   "kernel_size", "dilation", "padding")  # the last three: DNAS receptive-field search


def blueprint_of(model: nn.Module) -> list[dict] | None:
    """The steps that built ``model``'s structure, or None for a model edgeflow did not build."""
    meta = getattr(model, "meta", None)  # a GraphModule keeps ``meta`` through deepcopy, not attributes
    steps = meta.get(KEY) if isinstance(meta, dict) else getattr(model, KEY, None)
    return [dict(s) for s in steps] if steps is not None else None


def set_blueprint(model: nn.Module, steps: list[dict] | None) -> None:
    """Record ``steps`` on ``model`` (nothing if ``steps`` is None: the model stays unsaveable)."""
    if steps is None:
        return
    meta = getattr(model, "meta", None)
    if isinstance(meta, dict):
        meta[KEY] = list(steps)
    else:
        setattr(model, KEY, list(steps))


def record(model: nn.Module, step: dict, source: nn.Module | None = None) -> None:
    """Set ``model``'s blueprint to ``source``'s (default: its own) plus ``step``; a no-op when the
    source has none (a model built outside edgeflow)."""
    steps = blueprint_of(source if source is not None else model)
    if steps is not None:
        set_blueprint(model, [*steps, step])


def _tensors(module: nn.Module) -> dict[str, Any]:
    return {k: t for k, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
            if t is not None}


def resize_step(old: nn.Module, new: nn.Module) -> dict:
    """The ``resize`` step turning ``old``'s layer widths into ``new``'s (modules matched by name)."""
    old_modules = dict(old.named_modules())
    changed: dict[str, dict[str, Any]] = {}
    for name, module in new.named_modules():
        before = old_modules.get(name)
        if before is None:
            continue
        old_tensors = _tensors(before)
        tensors = {k: list(t.shape) for k, t in _tensors(module).items()
                   if k in old_tensors and old_tensors[k].shape != t.shape}
        attrs = {a: getattr(module, a) for a in RESIZABLE_ATTRS
                 if hasattr(module, a) and getattr(module, a) != getattr(before, a, None)}
        if tensors or attrs:
            changed[name] = {"attrs": attrs, "tensors": tensors}
    return {"op": "resize", "modules": changed}


BUILD_OPS = ("zoo", "target", "adaptive")  # the ops a blueprint may start with


def json_form(value: Any) -> Any:
    """``value`` with tuples as lists (the JSON form a blueprint step stores)."""
    if isinstance(value, Mapping):
        return {k: json_form(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_form(v) for v in value]
    return value


def rebuild(steps: list[dict]) -> nn.Module:
    """Replay a blueprint: a model of the recorded structure (weights not yet loaded)."""
    if not steps or steps[0].get("op") not in BUILD_OPS:
        raise ValueError(f"a blueprint starts with a {' or '.join(BUILD_OPS)} step, got {steps[:1]}")
    model = None
    for step in steps:
        model = _REPLAY[step["op"]](model, step)
    set_blueprint(model, steps)
    return model


def _zoo(_: Any, step: dict) -> nn.Module:
    from edgeflow.models.zoo import build_model

    return build_model(step["name"], tuple(step["input_shape"]), step["num_classes"], **step["options"])


def _target(_: Any, step: dict) -> nn.Module:
    from edgeflow.models.target import rebuild_target

    return rebuild_target(step)


def _resize(model: nn.Module, step: dict) -> nn.Module:
    import torch
    from torch import nn

    for name, change in step["modules"].items():
        module = model.get_submodule(name)
        for attr, value in change["attrs"].items():
            setattr(module, attr, tuple(value) if isinstance(value, list) else value)  # JSON lists: conv tuples
        for key, shape in change["tensors"].items():
            if key in module._parameters:
                old = module._parameters[key]
                module._parameters[key] = nn.Parameter(torch.zeros(shape, dtype=old.dtype), old.requires_grad)
            else:
                module._buffers[key] = torch.zeros(shape, dtype=module._buffers[key].dtype)
    return model


def _quantize(model: nn.Module, step: dict) -> nn.Module:
    from edgeflow.methods.quantization import QuantConfig, quantize_model

    return quantize_model(model, tuple(step["input_shape"]), QuantConfig(**step["config"]), bn=step["bn"])


def _fold_simulated_bn(model: nn.Module, step: dict) -> nn.Module:
    from edgeflow.methods.quantization import fold_simulated_bn

    fold_simulated_bn(model)
    return model


def _fold_bn(model: nn.Module, step: dict) -> nn.Module:
    from edgeflow.methods.quantization.fold import fold_batchnorm

    fold_batchnorm(model)
    return model


def _adaptive(_: Any, step: dict) -> nn.Module:
    from edgeflow.methods.adaptive.system import rebuild as rebuild_system

    return rebuild_system(step)


def _identity(model: nn.Module, step: dict) -> nn.Module:
    from torch import nn

    from edgeflow.graph import set_submodule

    for name in step["modules"]:
        set_submodule(model, name, nn.Identity())
    return model


_REPLAY = {"zoo": _zoo, "target": _target, "resize": _resize, "quantize": _quantize, "identity": _identity,
           "fold_simulated_bn": _fold_simulated_bn, "fold_bn": _fold_bn, "adaptive": _adaptive}


def module_flags(model: nn.Module) -> dict[str, dict[str, bool]]:
    """The public boolean attributes of every module except ``training`` (observer ``frozen``,
    ``observing``, ``enabled``, ``bn_frozen``, ...): state that lives outside the state dict."""
    flags = {}
    for name, module in model.named_modules():
        own = {k: v for k, v in vars(module).items()
               if isinstance(v, bool) and not k.startswith("_") and k != "training"}
        if own:
            flags[name] = own
    return flags


def load_weights(model: nn.Module, state_dict: Mapping[str, Any], flags: Mapping[str, Mapping[str, bool]]) -> None:
    """Load ``state_dict`` into a rebuilt ``model`` exactly (strict) and set its module ``flags``.

    Buffers the replay could not know — pruning masks, per-channel quantizer tensors sized at
    calibration — are registered or resized from the state dict first.
    """
    modules = dict(model.named_modules())
    own = model.state_dict()
    for key, value in state_dict.items():
        owner_name, _, attr = key.rpartition(".")
        owner = modules.get(owner_name)
        if owner is None or attr in owner._parameters:
            continue
        if key not in own or own[key].shape != value.shape:
            owner.register_buffer(attr, value.clone())
    model.load_state_dict(state_dict, strict=True)
    for name, values in flags.items():
        module = modules[name]
        for attr, value in values.items():
            setattr(module, attr, bool(value))
