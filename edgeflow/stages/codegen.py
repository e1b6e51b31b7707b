"""Stage ``codegen``: the exported int8 model as a C99 library, built and checked bit-exact.

Reads the file the ``export`` stage wrote (the state's ``onnx`` artifact) while the model is the
version it was exported from, else exports the current model itself (``fresh_export`` = 1), like
``profile``. It lowers the file to the runtime's integer program in ``tflm`` rounding, writes the C
project (``edgeflow.codegen``: model.h/.c, weights.c, kernels.c, main.c, Makefile, Cortex-M4
start-up), builds it with the host compiler and runs the data split through it. Metrics:
``host_agreement`` (share of samples whose int8 outputs are bit-equal to the runtime's),
``weights_bytes`` (constants) beside ``flash_bytes`` (the profile's count), ``arena_bytes``; with the
ARM toolchain also ``text_bytes``, ``rodata_bytes``, ``data_bytes``, ``bss_bytes`` (the library's
objects, arm-none-eabi-size), ``weights_rodata_bytes``, ``qemu_agreement``, ``instructions`` per
inference and ``macs_per_instruction`` under QEMU mps2-an386 (instructions, not cycles), next to
``model_mac_per_cycle`` (the run's target's int8 assumption). Without the toolchain the stage says in
one log line what it skipped. Artifact: the project, zipped (``c_model.zip``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import require, require_choice, require_filename, require_int
from edgeflow.stages._common import current_onnx
from edgeflow.stages._schema import StageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult

log = logging.getLogger("edgeflow")
SPLITS = ("test", "val")


@dataclass
class Config(StageConfig):
    split: str = "test"             # data split run through the runtime and the C library
    max_samples: int = 0            # 0 = the whole split
    arm: bool = True                # Cortex-M4 build, sizes and QEMU run when the ARM toolchain is present
    qemu_samples: int = 8           # samples run under QEMU (instructions per inference averaged over them)
    project: str = "c_model"        # folder of the generated project in the stage's directory (zipped artifact)
    filename: str = "model.onnx"    # used only when no exported file is found on the model

    def __post_init__(self) -> None:
        require_choice(self.split, "split", SPLITS)
        require_int(self.max_samples, "max_samples", 0, 10**9)
        require(isinstance(self.arm, bool), "arm", "true or false", self.arm)
        require_int(self.qemu_samples, "qemu_samples", 0, 10_000)
        require(isinstance(self.project, str) and self.project.isidentifier(), "project",
                "a plain folder name (letters, digits, _)", self.project)
        require_filename(self.filename, "filename", ".onnx")


def _samples(loader, max_samples: int):
    import numpy as np

    xs, n = [], 0
    for x, _ in loader:
        x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
        xs.append(x.astype(np.float32))
        n += len(x)
        if max_samples and n >= max_samples:
            break
    x = np.concatenate(xs)
    return x[:max_samples] if max_samples else x


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    """Generate, build and check the C library; log agreement, sizes and instructions."""
    import shutil
    from pathlib import Path

    from edgeflow import runtime
    from edgeflow.codegen import generate
    from edgeflow.codegen.verify import verify
    from edgeflow.state import StageResult

    state, path, fresh = current_onnx(state, ctx, cfg.filename)
    program = runtime.load(path, rounding="tflm")
    project = ctx.out_dir / cfg.project
    model = generate(program, project)
    loader = ctx.data.test_dataloader() if cfg.split == "test" else ctx.data.val_dataloader()
    result = verify(program, model, project, _samples(loader, cfg.max_samples), arm=cfg.arm,
                    qemu_samples=cfg.qemu_samples)
    if result.skipped:
        log.info("codegen: %s", result.skipped)
    metrics = {**result.metrics, "flash_bytes": float(program.flash_bytes), "fresh_export": float(fresh),
               "model_mac_per_cycle": float(ctx.hardware.cfg.mac_per_cycle["int8"])}
    archive = Path(shutil.make_archive(str(project), "zip", root_dir=project))
    return StageResult(state=state, metrics=metrics, artifacts={"c_project": archive})
