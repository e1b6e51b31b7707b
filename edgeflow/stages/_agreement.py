"""Simulation against deployment inside the ``ptq`` and ``qat`` stages: the fake-quant model against
its own int8 export run on edgeflow's integer runtime (torch-free at import: validation uses the schema).

``AgreementConfig`` is a mixin of both stage schemas (``agreement``, ``agreement_samples``).
``runtime_agreement`` exports the quantized model with the export stage's exporter (``export_model``,
to ``<stage folder>/model.onnx``, bound to the returned state as artifact ``onnx``: a later ``profile``
or ``codegen`` stage reuses it while the model is unchanged), lowers it with ``edgeflow.runtime.load``
in the rounding the model simulates (``QuantConfig.rounding``: ``onnx`` or ``tflm``) and measures both
on the test split with ``edgeflow.runtime.profiler.fakequant_agreement``:

- ``runtime_top1_agreement``: percent of samples where the fake-quant forward and the integer
  program pick the same class;
- ``runtime_test_acc``: the integer program's accuracy on the same samples (with
  ``agreement_samples: 0``, the whole test split, so it compares directly with ``test_acc``).

A model the exporter or the runtime refuses (``QDQExportError``, ``RuntimeModelError``: weights-only
quantization, an unsupported op) does not fail the stage: one warning line, no metric.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import require, require_int

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext

log = logging.getLogger("edgeflow")

FILENAME = "model.onnx"


@dataclass
class AgreementConfig:
    """The ``ptq`` / ``qat`` keys of the runtime check (a mixin: the stage's ``__post_init__`` calls
    ``check_agreement``)."""

    agreement: bool = True            # export, run on the int8 runtime, compare with the fake-quant forward
    agreement_samples: int = 0        # test samples compared; 0 = the whole test split

    def check_agreement(self) -> None:
        """Raise ``ConfigError`` (bare key) on the first invalid agreement setting."""
        require(isinstance(self.agreement, bool), "agreement", "true or false", self.agreement)
        require_int(self.agreement_samples, "agreement_samples", 0, 10_000_000)


def runtime_agreement(cfg: Any, state: State, ctx: StageContext) -> tuple[State, dict[str, float]]:
    """``state`` (with the ``onnx`` artifact of its model) and the metrics above for the stage config
    ``cfg`` (an ``AgreementConfig`` and a ``QuantConfig``); ``(state, {})`` when ``cfg.agreement`` is
    off or the model cannot be exported or lowered (logged as one warning)."""
    if not cfg.agreement:
        return state, {}
    from edgeflow import runtime
    from edgeflow.export import export_model
    from edgeflow.export.qdq import QDQExportError
    from edgeflow.runtime.profiler import fakequant_agreement

    try:
        path = export_model(state.model, state.input_shape, ctx.out_dir / FILENAME)
        exported = state.with_artifact("onnx", path)
        program = runtime.load(path, rounding=cfg.rounding)
        found = fakequant_agreement(program, exported.model, ctx.data.test_dataloader(),
                                    cfg.agreement_samples or None, program_acc=True)
    except (QDQExportError, runtime.RuntimeModelError) as err:
        log.warning("stage %s: no runtime agreement: %s", ctx.name, (str(err).splitlines() or [type(err).__name__])[0])
        return state, {}
    metrics = {"runtime_top1_agreement": found["fakequant_top1_agreement"]}
    if "runtime_test_acc" in found:
        metrics["runtime_test_acc"] = found["runtime_test_acc"]
    return exported, metrics
