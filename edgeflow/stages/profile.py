"""Stage ``profile``: run the exported int8 ONNX file on the bundled reference runtime.

Reads the file the ``export`` stage wrote (the state's ``onnx`` artifact) while the model is still
the version it was exported from; otherwise (no export, or a stage changed the model after it) the
stage exports the current model itself (metric ``fresh_export`` = 1), so it never measures an old
file. It lowers the file to the integer program of
``edgeflow.runtime`` and measures: MACs, flash (weights at true bit-width + biases + requantization
parameters), peak RAM (greedy arena), latency and energy on the run's target (or on the targets
the stage names, ``hardware``: see ``edgeflow.stages._targets``), whether it fits, accuracy of the
integer program on a data split, agreement with onnxruntime, and ``fakequant_top1_agreement`` /
``fakequant_test_acc``: the model's own (fake-quantized) forward against the integer program.
Accuracy and agreement are measured once, whatever the number of targets.
Artifacts: ``profile_layers.csv``, ``profile_layers.png`` (per-layer latency and energy) and
``profile_arena.png`` (arena usage over the schedule); in ``<target>/`` when targets are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import require, require_choice, require_filename
from edgeflow.stages._common import current_onnx
from edgeflow.stages._schema import StageConfig
from edgeflow.stages._targets import check_targets, stage_targets

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult

ROUNDINGS = ("onnx", "tflm")
SPLITS = ("test", "val", "none")


@dataclass
class Config(StageConfig):
    rounding: str = "onnx"          # onnx: bit-equal to onnxruntime; tflm: TFLite Micro double rounding
    split: str = "test"             # data split for accuracy/agreement; none = costs only
    max_samples: int = 0            # 0 = the whole split
    batch_size: int = 256
    agreement: bool = True          # compare outputs with onnxruntime (ORT_ENABLE_ALL) on the split
    plots: bool = True
    filename: str = "model.onnx"    # used only when no exported file is found on the model
    hardware: Any = None            # null: the run's target; a name; a list of names (metrics per target)

    def __post_init__(self) -> None:
        require_choice(self.rounding, "rounding", ROUNDINGS)
        require_choice(self.split, "split", SPLITS)
        require(self.max_samples >= 0, "max_samples", "an integer >= 0", self.max_samples)
        require(1 <= self.batch_size <= 65536, "batch_size", "an integer in [1, 65536]", self.batch_size)
        require_filename(self.filename, "filename", ".onnx")
        self.hardware = check_targets(self.hardware)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from edgeflow import runtime
    from edgeflow.hardware.report import plot_profile
    from edgeflow.state import StageResult

    state, path, fresh = current_onnx(state, ctx, cfg.filename)
    program = runtime.load(path, rounding=cfg.rounding)
    dataset = None
    if cfg.split != "none":
        dataset = ctx.data.test_dataloader() if cfg.split == "test" else ctx.data.val_dataloader()
    metrics: dict[str, float] = {}
    artifacts = {}
    for target in stage_targets(cfg.hardware, ctx):
        prof = program.profile(hardware=target.model, dataset=dataset, max_samples=cfg.max_samples or None,
                               reference="onnxruntime" if cfg.agreement else False, batch_size=cfg.batch_size)
        dataset = None  # accuracy and agreement do not depend on the target: measured on the first one only
        metrics.update(target.metrics(prof.metrics()))
        folder = target.folder(ctx.out_dir)
        artifacts[target.key("profile_layers_csv")] = prof.write_csv(folder / "profile_layers.csv")
        if cfg.plots:
            artifacts.update({target.key(k): p for k, p in plot_profile(prof, folder).items()})
    metrics["fresh_export"] = float(fresh)
    if cfg.split != "none":  # simulation vs deployment: the model's own (fake-quant) forward against the integers
        from edgeflow.runtime.profiler import fakequant_agreement

        split = ctx.data.test_dataloader() if cfg.split == "test" else ctx.data.val_dataloader()
        metrics.update(fakequant_agreement(program, state.model, split, cfg.max_samples or None, cfg.batch_size))
    from edgeflow.stages._adaptive_deploy import profile_adaptive  # an exported adaptive system, on integers

    metrics.update(profile_adaptive(state, ctx, cfg.rounding))
    ref_acc = state.reference_metrics.get("test_acc")
    if ref_acc is not None and "test_acc" in metrics:
        metrics["acc_drop"] = float(ref_acc) - metrics["test_acc"]
    return StageResult(state=state, metrics=metrics, artifacts=artifacts)
