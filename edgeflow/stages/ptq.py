"""Stage ``ptq``: post-training quantization (fold BN, calibrate ranges on training batches, no training).

Metrics: ``test_acc``, ``acc_drop`` (float reference − quantized, in points), ``float_test_acc``,
``weight_bits`` (parameter-weighted mean), ``weight_bytes`` (weights at their true bit-width),
``bias_bytes`` (int32), ``size_ratio`` (float32 weight bytes / quantized weight bytes),
``calib_batches``; ``runtime_top1_agreement`` and ``runtime_test_acc`` (the fake-quant model against its
int8 export on the integer runtime: ``edgeflow.stages._agreement``). Artifact ``quant_layers.json``:
per-layer bit-widths and methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import require
from edgeflow.methods.quantization.spec import QuantConfig
from edgeflow.stages._agreement import AgreementConfig
from edgeflow.stages._common import float_reference, write_json
from edgeflow.stages._schema import StageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(AgreementConfig, StageConfig, QuantConfig):
    """The ``QuantConfig`` fields (README "Quantization"; learned ranges excluded: no training), the
    runtime check (``AgreementConfig``) and the calibration length."""

    num_batches: int = 8             # calibration batches from the training split

    def __post_init__(self) -> None:
        self.check(learned=False)
        self.check_agreement()
        require(1 <= self.num_batches <= 100_000, "num_batches", "an integer in [1, 100000]", self.num_batches)


def check(cfg: Config, state: State) -> None:
    """Before any training: every ``overrides`` pattern selects a Conv/Linear layer of the model."""
    from edgeflow.methods.quantization.spec import name_matches
    from edgeflow.stages._patterns import require_matches

    require_matches("overrides", cfg.overrides, state.model, name_matches)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Fold BN, insert quantizers, calibrate on ``num_batches`` training batches, freeze, evaluate,
    compare with the integer runtime."""
    from edgeflow.methods.quantization import calibrate, freeze_observers, quant_report, quantize_model
    from edgeflow.stages._agreement import runtime_agreement
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate

    state = float_reference(state, ctx)
    model = quantize_model(state.model, state.input_shape, cfg)
    used = calibrate(model, ctx.data.train_dataloader(), cfg.num_batches)
    freeze_observers(model)
    metrics, table = quant_report(model, evaluate(model, ctx, "test"), state.reference_metrics.get("test_acc"))
    artifacts = {"quant_layers": write_json(ctx.out_dir / "quant_layers.json", table)}
    metrics["calib_batches"] = float(used)
    state, agreement = runtime_agreement(cfg, state.with_model(model), ctx)
    return StageResult(state=state, metrics={**metrics, **agreement}, artifacts=artifacts)
