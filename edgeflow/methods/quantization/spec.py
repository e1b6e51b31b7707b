"""What to quantize and how (torch-free): ``QuantConfig`` and its per-layer ``LayerSpec``.

One spec for the library and the stages: ``quantize_model`` takes a ``QuantConfig``; the ``ptq`` and
``qat`` stage schemas extend it, so ``stages.ptq.weight_bits`` and ``QuantConfig.weight_bits`` are the
same field. ``QuantConfig.check`` raises ``ConfigError`` with the bare key (``weight_bits``,
``overrides.<pattern>.<key>``); the stage validation places it under ``stages.<name>``.

Per-layer settings (``resolve_specs``): the ``LayerSpec`` defaults, then ``first_layer_bits`` /
``last_layer_bits`` (first and last quantizable layers in execution order), then ``overrides``
(module-name pattern → settings), later entries winning.

This module imports no torch, so config validation can use it.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

from edgeflow.core.errors import ConfigError, require, require_choice

__all__ = ["WEIGHT_METHODS", "ACT_METHODS", "LEARNED_METHODS", "WEIGHT_FORMATS", "LAYER_KEYS", "BN_MODES",
           "ROUNDINGS", "LayerSpec", "QuantConfig", "name_matches", "resolve_specs"]

WEIGHT_METHODS = ("minmax", "mse", "percentile", "lsq")
ACT_METHODS = ("minmax", "ema", "percentile", "mse", "pact", "lsq")
LEARNED_METHODS = ("pact", "lsq")  # ranges learned by gradient descent: they need training (qat)
WEIGHT_FORMATS = ("uniform", "binary", "pow2")
LAYER_KEYS = ("weight_bits", "act_bits", "weight_format", "per_channel", "weight_method", "act_method")
BN_MODES = ("fold", "simulate", "keep")
ROUNDINGS = ("onnx", "tflm")  # the integer arithmetic the fake-quant forward reproduces (methods.quantization.tflm)


@dataclass
class LayerSpec:
    """Quantization settings of one layer (the keys ``overrides`` may set, ``LAYER_KEYS``)."""

    weight_bits: int = 8             # 1 = binary (sign · per-channel mean |w|), 2..8 uniform symmetric
    act_bits: int = 8                # 2..8 asymmetric; 32 = weights-only (activations stay float)
    weight_format: str = "uniform"   # uniform | binary | pow2 (power-of-two, 2..4-bit codes)
    per_channel: bool = True         # weight scale per output channel (else per tensor)
    weight_method: str = "minmax"    # minmax | mse | percentile | lsq (learned)
    act_method: str = "minmax"       # minmax | ema | percentile | mse | pact, lsq (learned)


@dataclass
class QuantConfig(LayerSpec):
    """How to quantize a model: every layer's defaults (the ``LayerSpec`` fields), range-setting
    parameters, first/last-layer bits and per-pattern overrides (README "Quantization").

    ``weight_bits`` 1 → binary, 2…8 uniform (or the power-of-two code width, 2…4, with
    ``weight_format="pow2"``). ``act_bits`` 2…8, or 32 for weights-only quantization (activations
    stay float; such a model cannot be exported as QDQ). ``overrides`` maps a module-name glob (or
    ``re:<regex>``) to a mapping of ``LAYER_KEYS`` settings. ``rounding``: the integer arithmetic the
    fake-quant forward reproduces, ``onnx`` (onnxruntime: float multiplier, half to even) or ``tflm``
    (TFLite Micro: Q31 multiplier, double rounding; ``edgeflow.methods.quantization.tflm``).
    """

    percentile: float = 99.99        # for the percentile methods
    ema_momentum: float = 0.1        # for act_method=ema
    first_layer_bits: Optional[int] = None  # weight (and at least activation) bits of the first layer
    last_layer_bits: Optional[int] = None   # ... of the last layer
    overrides: dict[str, Any] = field(default_factory=dict)  # module-name glob (or re:regex) -> settings
    rounding: str = "onnx"           # onnx (onnxruntime's requantization) | tflm (TFLite Micro's)

    def default_spec(self) -> LayerSpec:
        """The ``LayerSpec`` of a layer that no first/last-layer setting or override touches."""
        return LayerSpec(**{key: getattr(self, key) for key in LAYER_KEYS})

    def spec_dict(self) -> dict[str, Any]:
        """The ``QuantConfig`` fields alone (a stage ``Config`` extending it leaves its own out), as
        plain data: ``QuantConfig(**spec_dict())`` rebuilds the spec."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(QuantConfig)}

    def check(self, learned: bool = True) -> None:
        """Raise ``ConfigError`` (bare key: ``weight_bits``, ``overrides.<pattern>.<key>``) on the first
        invalid setting. ``learned=False`` rejects ``LEARNED_METHODS`` (no training follows, as in ptq)."""
        for key in ("weight_bits", "act_bits", "weight_format"):
            _check_setting(key, getattr(self, key), key, learned)
        if self.weight_format == "pow2":
            require(2 <= self.weight_bits <= 4, "weight_bits", "2..4 for weight_format=pow2", self.weight_bits)
        for key in ("per_channel", "weight_method", "act_method"):
            _check_setting(key, getattr(self, key), key, learned)
        require(50 < self.percentile <= 100, "percentile", "in (50, 100]", self.percentile)
        require(0 < self.ema_momentum <= 1, "ema_momentum", "in (0, 1]", self.ema_momentum)
        for key in ("first_layer_bits", "last_layer_bits"):
            v = getattr(self, key)
            require(v is None or 1 <= v <= 8, key, "null or an integer in 1..8", v)
        for pattern, settings in self.overrides.items():
            _check_layer(settings, f"overrides.{pattern}", learned)
        require_choice(self.rounding, "rounding", ROUNDINGS)


def _check_setting(name: str, value: Any, key: str, learned: bool) -> None:
    """Check one ``LAYER_KEYS`` setting ``name`` = ``value``, reported as ``key``."""
    if name == "weight_bits":
        require(isinstance(value, int) and 1 <= value <= 8, key, "an integer in 1..8 (1 = binary)", value)
    elif name == "act_bits":
        require(isinstance(value, int) and (2 <= value <= 8 or value == 32), key,
                "an integer in 2..8, or 32 (float)", value)
    elif name == "per_channel":
        require(isinstance(value, bool), key, "true or false", value)
    elif name == "weight_format":
        require_choice(value, key, WEIGHT_FORMATS)
    elif name in ("weight_method", "act_method"):
        methods = WEIGHT_METHODS if name == "weight_method" else ACT_METHODS
        require_choice(value, key, methods if learned else tuple(m for m in methods if m not in LEARNED_METHODS))


def _check_layer(settings: Any, key: str, learned: bool) -> None:
    """Check one ``overrides`` entry: a mapping of ``LAYER_KEYS`` settings."""
    if not isinstance(settings, dict):
        raise ConfigError(key, f"must be a mapping of {', '.join(LAYER_KEYS)}, got {settings!r}")
    for name, value in settings.items():
        if name not in LAYER_KEYS:
            raise ConfigError(f"{key}.{name}", f"unknown key; allowed here: {', '.join(LAYER_KEYS)}")
        _check_setting(name, value, f"{key}.{name}", learned)
    if settings.get("weight_format") == "pow2" and "weight_bits" in settings:
        require(2 <= settings["weight_bits"] <= 4, f"{key}.weight_bits", "2..4 for power-of-two weights",
                settings["weight_bits"])


def name_matches(name: str, pattern: str) -> bool:
    """fnmatch on the qualified module name; ``re:<regex>`` for a regular expression (fullmatch).

    A pattern without wildcards also matches the modules below it (``features.0`` → ``features.0.0``).
    """
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    if fnmatch.fnmatchcase(name, pattern):
        return True
    return not any(c in pattern for c in "*?[") and name.startswith(pattern + ".")


def resolve_specs(config: QuantConfig, names: list[str]) -> dict[str, LayerSpec]:
    """The settings of each layer in ``names`` (execution order; see the module docstring)."""
    specs = {}
    for i, name in enumerate(names):
        spec = config.default_spec()
        for bits, hit in ((config.first_layer_bits, i == 0), (config.last_layer_bits, i == len(names) - 1)):
            if bits is not None and hit:
                act_bits = spec.act_bits if spec.act_bits == 32 else max(spec.act_bits, bits)
                spec = replace(spec, weight_bits=bits, act_bits=act_bits)
        for pattern, settings in config.overrides.items():
            if name_matches(name, pattern):
                spec = replace(spec, **dict(settings))
        if spec.weight_bits == 1:
            spec = replace(spec, weight_format="binary")
        elif spec.weight_format == "binary":
            spec = replace(spec, weight_bits=1)
        elif spec.weight_format == "pow2" and spec.weight_bits > 4:
            spec = replace(spec, weight_format="uniform")
        specs[name] = spec
    return specs
