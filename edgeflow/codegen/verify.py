"""Check a generated project against the runtime: host build, Cortex-M4 sizes, QEMU run.

``verify(program, model, project, x)`` builds the project with the host compiler and runs float
samples ``x`` through the runtime (``tflm``) and through the C library, fed the same int8 input (the
runtime's quantized input); ``host_agreement`` is the share of samples whose int8 outputs are
bit-equal. With the ARM toolchain present it also builds for the Cortex-M4, measures the library's
section sizes (``arm-none-eabi-size -A`` of model.o + weights.o + kernels.o; ``weights_rodata_bytes``
is weights.o alone) and runs the first ``qemu_samples`` samples under QEMU (mps2-an386):
``qemu_agreement`` and ``instructions`` per inference. ``skipped`` says in one line what was not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeflow.codegen import build
from edgeflow.codegen.lower import CModel
from edgeflow.runtime.program import Program


@dataclass
class Verification:
    """Measured figures (``metrics``: flat name -> float) and what was skipped (one line, or None)."""

    metrics: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: str | None = None


def runtime_io(program: Program, model: CModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 inputs, int8 outputs) of the C library's tensors, from ``Program.run(x, rounding="tflm")``
    (one sample at a time when the model declares a fixed batch other than ``len(x)``)."""
    n = len(x)
    batch = program.inputs[0].shape[0] if program.inputs[0].shape else None
    if batch is not None and batch != n:
        pairs = [runtime_io(program, model, x[i:i + 1]) for i in range(n)]
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    _, env = program.run(x, rounding="tflm", keep=True)
    return env[model.input_name].reshape(n, -1), env[model.output_name].reshape(n, -1)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of samples (rows) whose outputs are bit-equal."""
    return float(np.mean(np.all(a == b, axis=1))) if len(a) else 0.0


def verify(program: Program, model: CModel, project: str | Path, x: np.ndarray, arm: bool = True,
           qemu_samples: int = 8) -> Verification:
    """Host build + agreement on ``x`` (float samples, batch first); with ``arm``, sizes and QEMU when present."""
    project = Path(project)
    xi, ref = runtime_io(program, model, x)
    build.build_host(project)
    out = build.run_host(project, xi, model.input_size, model.output_size)
    v = Verification({"host_agreement": agreement(out, ref), "samples": float(len(x)),
                      "arena_bytes": float(model.arena_bytes), "weights_bytes": float(model.weights_bytes),
                      "macs": float(model.macs)})
    if not arm:
        v.skipped = "Cortex-M4 build and QEMU run not requested"
        return v
    absent = build.missing(build.ARM_TOOLS + build.QEMU_TOOLS)
    if absent:
        v.skipped = (f"{', '.join(absent)} not found: skipped the Cortex-M4 build and the QEMU run "
                     "(run `make arm-toolchain`)")
        return v
    build.build_arm(project)
    v.sizes = build.section_sizes(project)
    v.metrics.update({f"{s}_bytes": float(n) for s, n in v.sizes["total"].items()})
    v.metrics["weights_rodata_bytes"] = float(v.sizes["weights"]["rodata"])
    k = min(len(x), qemu_samples)
    if k:
        run = build.run_qemu(project, xi[:k], model.input_size, model.output_size)
        v.metrics["qemu_agreement"] = agreement(run.outputs, ref[:k])
        v.metrics["instructions"] = run.instructions / k
        v.metrics["macs_per_instruction"] = model.macs / v.metrics["instructions"] if run.instructions else 0.0
    return v
