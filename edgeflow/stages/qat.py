"""Stage ``qat``: quantization-aware training (fake quantization in the forward, straight-through gradients).

Insert quantizers (BatchNorm folded first, or simulated with ``bn: simulate``), calibrate them on
``calib_batches`` training batches, fine-tune with ``edgeflow.training.fit``; optionally freeze the
observers / learned ranges (``freeze_observers_epoch``) and BN statistics (``freeze_bn_epoch``).
Metrics as ``ptq``: ``test_acc``, ``acc_drop``, ``weight_bits``, ``weight_bytes``, ..., ``runtime_top1_agreement``,
``runtime_test_acc`` (``edgeflow.stages._agreement``), plus what ``fit`` reports (``best_val_acc``, ``epochs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import MAX_EPOCHS, require, require_choice
from edgeflow.methods.quantization.spec import QuantConfig
from edgeflow.stages._agreement import AgreementConfig
from edgeflow.stages._common import float_reference, write_json
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(AgreementConfig, TrainingStageConfig, QuantConfig):
    """The ``QuantConfig`` fields (README "Quantization"), calibration, freezing schedules, the BatchNorm
    mode, the fine-tuning settings (``TrainingStageConfig``) and the runtime check (``AgreementConfig``)."""

    max_epochs: int = 5
    lr: float = 0.001
    act_method: str = "ema"          # moving-average ranges suit training; pact / lsq learn them
    calib_batches: int = 8           # batches observed before training starts (initial ranges)
    freeze_observers_epoch: int = -1  # from this 0-based epoch on, ranges and scales are fixed; -1 = never
    freeze_bn_epoch: int = -1        # bn=simulate: from this epoch on, BN uses running statistics; -1 = never
    bn: str = "fold"                 # fold: fold BN before QAT | simulate: train with BN, fold at the end

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()
        self.check_agreement()
        require(self.calib_batches >= 1, "calib_batches", "an integer >= 1", self.calib_batches)
        require(self.freeze_observers_epoch >= -1, "freeze_observers_epoch", "-1 (never) or an epoch >= 0",
                self.freeze_observers_epoch)
        for key in ("freeze_observers_epoch", "freeze_bn_epoch"):
            require(getattr(self, key) <= MAX_EPOCHS, key, f"-1 (never) or an epoch <= {MAX_EPOCHS}",
                    getattr(self, key))
        require(self.freeze_bn_epoch >= -1, "freeze_bn_epoch", "-1 (never) or an epoch >= 0", self.freeze_bn_epoch)
        require_choice(self.bn, "bn", ("fold", "simulate"))


def check(cfg: Config, state: State) -> None:
    """Before any training: every ``overrides`` pattern selects a Conv/Linear layer of the model."""
    from edgeflow.methods.quantization.spec import name_matches
    from edgeflow.stages._patterns import require_matches

    require_matches("overrides", cfg.overrides, state.model, name_matches)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Quantize, calibrate, fine-tune with fake quantization, fold, freeze, evaluate, compare with the
    integer runtime."""
    from edgeflow.methods.quantization import (
        calibrate,
        fold_simulated_bn,
        freeze_observers,
        quant_report,
        quantize_model,
    )
    from edgeflow.methods.quantization.callbacks import QATCallback
    from edgeflow.stages._agreement import runtime_agreement
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate, fit

    state = float_reference(state, ctx)
    model = quantize_model(state.model, state.input_shape, cfg, bn=cfg.bn)
    calibrate(model, ctx.data.train_dataloader(), cfg.calib_batches)
    callback = QATCallback(cfg.freeze_observers_epoch, cfg.freeze_bn_epoch)
    summary = fit(model, ctx, cfg, callbacks=[callback])
    fold_simulated_bn(model)
    freeze_observers(model)
    metrics, table = quant_report(model, evaluate(model, ctx, "test"), state.reference_metrics.get("test_acc"))
    artifacts = {"quant_layers": write_json(ctx.out_dir / "quant_layers.json", table)}
    metrics.update({k: float(v) for k, v in summary.items()})  # best_val_acc, epochs (from fit)
    state, agreement = runtime_agreement(cfg, state.with_model(model), ctx)
    return StageResult(state=state, metrics={**metrics, **agreement}, artifacts=artifacts)
