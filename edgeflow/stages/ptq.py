"""Stage ``ptq``: post-training quantization (fold BN, calibrate ranges on training batches, no training).

Metrics: ``test_acc``, ``acc_drop`` (float reference − quantized, in points), ``float_test_acc``,
``weight_bits`` (parameter-weighted mean), ``weight_bytes`` (weights at their true bit-width),
``bias_bytes`` (int32), ``size_ratio`` (float32 weight bytes / quantized weight bytes),
``calib_batches``. Artifact ``quant_layers.json``: per-layer bit-widths and methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from edgeflow.config import ConfigError, StageConfig, require, require_choice

if TYPE_CHECKING:
    from edgeflow.state import ModelState, StageContext, StageResult

# Kept here (not imported from edgeflow.methods.quantization) so config validation never imports torch.
WEIGHT_METHODS = ("minmax", "mse", "percentile", "lsq")
ACT_METHODS = ("minmax", "ema", "percentile", "mse", "pact", "lsq")
WEIGHT_FORMATS = ("uniform", "binary", "pow2")
LAYER_KEYS = ("weight_bits", "act_bits", "weight_format", "per_channel", "weight_method", "act_method")


def _check_layer(settings: Any, key: str, learnable_ok: bool) -> None:
    if not isinstance(settings, dict):
        raise ConfigError(key, f"must be a mapping of {', '.join(LAYER_KEYS)}, got {settings!r}")
    for k, v in settings.items():
        sub = f"{key}.{k}"
        if k not in LAYER_KEYS:
            raise ConfigError(sub, f"unknown key; allowed here: {', '.join(LAYER_KEYS)}")
        if k == "weight_bits":
            require(isinstance(v, int) and 1 <= v <= 8, sub, "an integer in 1..8 (1 = binary)", v)
        elif k == "act_bits":
            require(isinstance(v, int) and (2 <= v <= 8 or v == 32), sub, "an integer in 2..8, or 32 (float)", v)
        elif k == "per_channel":
            require(isinstance(v, bool), sub, "true or false", v)
        elif k == "weight_format":
            require_choice(v, sub, WEIGHT_FORMATS)
        elif k == "weight_method":
            require_choice(v, sub, WEIGHT_METHODS if learnable_ok else WEIGHT_METHODS[:-1])
        elif k == "act_method":
            require_choice(v, sub, ACT_METHODS if learnable_ok else ACT_METHODS[:-2])
    if settings.get("weight_format") == "pow2" and "weight_bits" in settings:
        require(2 <= settings["weight_bits"] <= 4, f"{key}.weight_bits", "2..4 for power-of-two weights",
                settings["weight_bits"])


@dataclass
class QuantOptions:
    """Quantization settings shared by ``ptq`` and ``qat`` (README "Quantization" lists them all)."""

    weight_bits: int = 8             # 1 = binary (sign · per-channel mean |w|), 2..8 uniform symmetric
    act_bits: int = 8                # 2..8 asymmetric; 32 = weights-only (activations stay float)
    weight_format: str = "uniform"   # uniform | binary | pow2 (power-of-two, 2..4-bit codes)
    per_channel: bool = True         # weight scale per output channel (else per tensor)
    weight_method: str = "minmax"    # minmax | mse | percentile | lsq (qat only)
    act_method: str = "minmax"       # minmax | ema | percentile | mse | pact, lsq (qat only)
    percentile: float = 99.99        # for the percentile methods
    ema_momentum: float = 0.1        # for act_method=ema
    first_layer_bits: Optional[int] = None  # weight (and at least activation) bits of the first layer
    last_layer_bits: Optional[int] = None   # ... of the last layer
    overrides: dict[str, Any] = field(default_factory=dict)  # module-name glob (or re:regex) -> settings

    _learnable_ok = False

    def check_quant(self) -> None:
        learn = self._learnable_ok
        require(1 <= self.weight_bits <= 8, "weight_bits", "an integer in 1..8 (1 = binary)", self.weight_bits)
        require(2 <= self.act_bits <= 8 or self.act_bits == 32, "act_bits", "an integer in 2..8, or 32 (float)",
                self.act_bits)
        require_choice(self.weight_format, "weight_format", WEIGHT_FORMATS)
        if self.weight_format == "pow2":
            require(2 <= self.weight_bits <= 4, "weight_bits", "2..4 for weight_format=pow2", self.weight_bits)
        require_choice(self.weight_method, "weight_method", WEIGHT_METHODS if learn else WEIGHT_METHODS[:-1])
        require_choice(self.act_method, "act_method", ACT_METHODS if learn else ACT_METHODS[:-2])
        require(50 < self.percentile <= 100, "percentile", "in (50, 100]", self.percentile)
        require(0 < self.ema_momentum <= 1, "ema_momentum", "in (0, 1]", self.ema_momentum)
        for key in ("first_layer_bits", "last_layer_bits"):
            v = getattr(self, key)
            require(v is None or 1 <= v <= 8, key, "null or an integer in 1..8", v)
        for pattern, settings in self.overrides.items():
            _check_layer(settings, f"overrides.{pattern}", learn)

    def quant_config(self, bn: str = "fold") -> Any:
        """The ``edgeflow.methods.quantization.QuantConfig`` for these options (imports torch)."""
        from edgeflow.methods.quantization import QuantConfig

        return QuantConfig(
            weight_bits=self.weight_bits, act_bits=self.act_bits, weight_format=self.weight_format,
            per_channel=self.per_channel, weight_method=self.weight_method, act_method=self.act_method,
            percentile=self.percentile, ema_momentum=self.ema_momentum, first_layer_bits=self.first_layer_bits,
            last_layer_bits=self.last_layer_bits, overrides={k: dict(v) for k, v in self.overrides.items()}, bn=bn)


@dataclass
class Config(StageConfig, QuantOptions):
    num_batches: int = 8             # calibration batches from the training split

    def __post_init__(self) -> None:
        self.check_quant()
        require(self.num_batches >= 1, "num_batches", "an integer >= 1", self.num_batches)


def quant_report(model: Any, state: ModelState, ctx: StageContext, test: dict[str, float]) -> tuple[dict, dict]:
    """Metrics and artifacts shared by ptq and qat (test accuracy, drop, sizes, per-layer table)."""
    import json

    from edgeflow.methods.quantization import layer_table, quant_summary

    metrics = {"test_acc": test["test_acc"], "test_loss": test["test_loss"]}
    ref = state.reference_metrics.get("test_acc")
    if ref is not None:
        metrics["float_test_acc"] = float(ref)
        metrics["acc_drop"] = float(ref) - test["test_acc"]
    summary = quant_summary(model)
    metrics.update({k: float(v) for k, v in summary.items() if k != "float_weight_bytes"})
    path = ctx.out_dir / "quant_layers.json"
    path.write_text(json.dumps({"layers": layer_table(model), **summary}, indent=2))
    return metrics, {"quant_layers": path}


def float_reference(state: ModelState, ctx: StageContext) -> None:
    """Measure the float model's test accuracy once if no earlier stage recorded it."""
    if "test_acc" not in state.reference_metrics:
        from edgeflow.training import evaluate

        state.reference_metrics["test_acc"] = evaluate(state.model, ctx, "test")["test_acc"]


def run(cfg: Config, state: ModelState, ctx: StageContext) -> StageResult:
    """Fold BN, insert quantizers, calibrate on ``num_batches`` training batches, freeze, evaluate."""
    from dataclasses import replace

    from edgeflow.methods.quantization import calibrate, freeze_observers, quantize_model
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate

    float_reference(state, ctx)
    model = quantize_model(state.model, state.input_shape, cfg.quant_config("fold"))
    used = calibrate(model, ctx.datamodule.train_dataloader(), cfg.num_batches)
    freeze_observers(model)
    metrics, artifacts = quant_report(model, state, ctx, evaluate(model, ctx, "test"))
    metrics["calib_batches"] = float(used)
    return StageResult(state=replace(state, model=model), metrics=metrics, artifacts=artifacts)
