"""Stage ``export``: write the model as ONNX and check it in onnxruntime.

Float models export as plain ONNX; models carrying quantizers export in QDQ form (int8 weights,
int32 biases). The file is recorded in the state as artifact ``onnx``, bound to the model version it was
made from: ``profile`` reads it only while the model is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import require, require_filename, require_finite
from edgeflow.stages._schema import StageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(StageConfig):
    opset: int = 17
    filename: str = "model.onnx"
    atol: float = 1e-4  # float export: max |onnxruntime - torch| allowed on a test batch

    def __post_init__(self) -> None:
        require(17 <= self.opset <= 21, "opset", "an integer in [17, 21]", self.opset)
        require_filename(self.filename, "filename", ".onnx")
        require_finite(self.atol, "atol", "a finite float in (0, 1]", 0 < self.atol <= 1)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Export, run once in onnxruntime, compare with torch; report file size and max difference."""
    from edgeflow.export import check_against_torch, export_model
    from edgeflow.state import StageResult

    path = export_model(state.model, state.input_shape, ctx.out_dir / cfg.filename, opset=cfg.opset)
    x, _ = next(iter(ctx.data.test_dataloader()))
    check = check_against_torch(state.model, path, x, atol=cfg.atol)
    metrics = {"onnx_bytes": float(path.stat().st_size), **check}
    from edgeflow.stages._adaptive_deploy import export_adaptive  # an adaptive system of parts: its files and policy.json

    state, adaptive = export_adaptive(state.with_artifact("onnx", path), ctx.out_dir, cfg.opset)
    return StageResult(state=state, metrics={**metrics, **adaptive}, artifacts={"onnx": path})
