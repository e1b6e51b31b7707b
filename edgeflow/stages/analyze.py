"""Stage ``analyze``: per-layer cost analysis of the current model on the run's target, or on the
targets the stage names (``hardware``, see ``edgeflow.stages._targets``).

Logs ``macs``, ``params``, ``flash_bytes``, ``peak_ram_bytes``, ``latency_ms``, ``energy_uj``, ``fits``
(1/0), ``sparsity`` and ``weight_bits`` (weight-count-weighted mean), and writes ``layers.csv`` and
``layers.png`` (per-layer latency and energy bars); with a list of targets, the flash, latency,
energy and fit per target (``<target>/latency_ms``) and the files in ``<target>/``. The model is
analysed once. Leaves the model unchanged; usable anywhere in a recipe. Imports torch/matplotlib only
inside ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import require
from edgeflow.stages._schema import StageConfig
from edgeflow.stages._targets import check_targets, stage_targets

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(StageConfig):
    """``default_bits``: bit-width of weights and activations of layers that carry no quantizer
    (32 = float32, as the model is; 8 = cost a float model as if deployed at int8).
    ``csv`` / ``plot``: write the per-layer table / chart. ``hardware``: null (the run's target), a
    target name, or a list of names (metrics and files per target)."""

    kind: str = "analyze"
    default_bits: int = 32
    csv: bool = True
    plot: bool = True
    hardware: Any = None

    def __post_init__(self) -> None:
        require(self.default_bits in (1, 2, 4, 8, 16, 32), "default_bits", "one of 1, 2, 4, 8, 16, 32",
                self.default_bits)
        self.hardware = check_targets(self.hardware)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from edgeflow.hardware import analyze
    from edgeflow.hardware.report import plot_layers, write_csv
    from edgeflow.state import StageResult

    cost = analyze(state.model, state.input_shape, default_bits=cfg.default_bits)
    metrics: dict[str, float] = {}
    artifacts = {}
    for target in stage_targets(cfg.hardware, ctx):
        est = target.model.estimate(cost)
        metrics.update(target.metrics(est.metrics()))
        folder = target.folder(ctx.out_dir)
        if cfg.csv:
            artifacts[target.key("layers_csv")] = write_csv(cost, est, folder / "layers.csv")
        if cfg.plot:
            artifacts[target.key("layers_png")] = plot_layers(est, folder / "layers.png")
    metrics["sparsity"] = float(cost.sparsity)
    w = cost.weights
    metrics["weight_bits"] = float(sum(lc.weight_bits * lc.weights for lc in cost.layers) / w) if w else 0.0
    return StageResult(state=state, metrics=metrics, artifacts=artifacts)
