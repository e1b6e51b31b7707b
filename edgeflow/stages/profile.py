"""Stage ``profile``: run the exported int8 ONNX file on the bundled reference runtime.

Reads the file the ``export`` stage wrote (``model.edgeflow_onnx_path``; if absent the stage exports
the model itself with ``edgeflow.export.export_model``), lowers it to the integer program of
``edgeflow.runtime`` and measures: MACs, flash (weights at true bit-width + biases + requantization
parameters), peak RAM (greedy arena), latency and energy on the configured hardware target,
whether it fits, accuracy of the integer program on a data split, and agreement with onnxruntime.
Artifacts: ``profile_layers.csv``, ``profile_layers.png`` (per-layer latency and energy) and
``profile_arena.png`` (arena usage over the schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.config import StageConfig, require, require_choice

if TYPE_CHECKING:
    from edgeflow.state import ModelState, StageContext, StageResult

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

    def __post_init__(self) -> None:
        require_choice(self.rounding, "rounding", ROUNDINGS)
        require_choice(self.split, "split", SPLITS)
        require(self.max_samples >= 0, "max_samples", "an integer >= 0", self.max_samples)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.filename.endswith(".onnx"), "filename", "a name ending in .onnx", self.filename)


def _split_loader(ctx: StageContext, split: str):
    dm = ctx.datamodule
    return dm.test_dataloader() if split == "test" else dm.val_dataloader()


def run(cfg: Config, state: ModelState, ctx: StageContext) -> StageResult:
    from pathlib import Path

    from edgeflow import runtime
    from edgeflow.state import StageResult

    path = getattr(state.model, "edgeflow_onnx_path", None)
    if not path or not Path(path).is_file():
        from edgeflow.export import export_model

        path = export_model(state.model, state.input_shape, ctx.out_dir / cfg.filename)
        state.model.edgeflow_onnx_path = str(path)
    program = runtime.load(path, rounding=cfg.rounding)
    dataset = None if cfg.split == "none" else _split_loader(ctx, cfg.split)
    prof = program.profile(hardware=ctx.hardware, dataset=dataset, reference="onnxruntime" if cfg.agreement else False,
                           max_samples=cfg.max_samples or None, batch_size=cfg.batch_size)
    metrics = prof.metrics()
    ref_acc = state.reference_metrics.get("test_acc")
    if ref_acc is not None and "test_acc" in metrics:
        metrics["acc_drop"] = float(ref_acc) - metrics["test_acc"]
    artifacts = {"profile_layers_csv": prof.write_csv(ctx.out_dir / "profile_layers.csv")}
    if cfg.plots:
        artifacts.update(write_plots(prof, ctx.out_dir))
    return StageResult(state=state, metrics=metrics, artifacts=artifacts)


def write_plots(prof, out_dir) -> dict:
    """Per-layer latency/energy bars and arena usage over the schedule (PNG files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    layers = [lp for lp in prof.layers if lp.kind not in ("reshape",)]
    names = [f"{lp.index}:{lp.kind}" for lp in layers]
    fig, axes = plt.subplots(2 if prof.latency_ms is not None else 1, 1, figsize=(max(6, 0.35 * len(layers)), 6),
                             squeeze=False)
    if prof.latency_ms is not None:
        axes[0, 0].bar(names, [lp.latency_ms for lp in layers], color="tab:blue")
        axes[0, 0].set_ylabel("latency [ms]")
        axes[0, 0].set_title(f"per-layer latency and energy on {prof.hardware}")
        axes[1, 0].bar(names, [lp.energy_uj for lp in layers], color="tab:orange")
        axes[1, 0].set_ylabel("energy [uJ]")
    else:
        axes[0, 0].bar(names, [lp.macs for lp in layers], color="tab:blue")
        axes[0, 0].set_ylabel("MACs")
    for ax in axes[:, 0]:
        ax.tick_params(axis="x", rotation=90, labelsize=7)
    fig.tight_layout()
    p = out_dir / "profile_layers.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out["profile_layers_png"] = p

    usage = prof.plan.usage()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.step(range(len(usage)), [u[0] for u in usage], where="mid", label="live tensors")
    ax.step(range(len(usage)), [u[1] for u in usage], where="mid", label="arena high-water")
    ax.axhline(prof.peak_ram_bytes, color="k", ls="--", lw=0.8, label=f"arena {prof.peak_ram_bytes:,} B")
    ax.set_xlabel("op (schedule step)")
    ax.set_ylabel("bytes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "profile_arena.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out["profile_arena_png"] = p
    return out
