"""C code generation: from the runtime's int8 ``Program`` to a self-contained C99 library.

``generate(program, out_dir)`` lowers the program (``edgeflow.codegen.lower``: every node checked
first, an unsupported op is one ``UnsupportedOpError`` line naming op and node, before any file is
written) and writes ``model.h`` / ``model.c`` (static arena laid out by the runtime's planner, one
kernel call per layer, no malloc), ``weights.c`` (const arrays: flash; 2- and 4-bit weights packed
four or two a byte), ``kernels.c`` (portable reference kernels in TFLite Micro arithmetic: Q31
multiplier + shift, double rounding; on a core with the DSP extension, ``__ARM_FEATURE_DSP``, SIMD
kernels — SXTB16 / SMLAD — for convolutions, depthwise convolutions and fully connected layers), a harness
``main.c``, a Cortex-M4 start-up and linker script for QEMU's mps2-an386, and a Makefile
(``edgeflow.codegen.emit``). The library's outputs are bit-equal to ``Program.run(x, rounding="tflm")``.

``edgeflow.codegen.build`` compiles it (host gcc; ``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os``),
measures section sizes and runs it under QEMU with instruction counting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeflow.codegen.lower import SUPPORTED, CModel, lower

if TYPE_CHECKING:
    from edgeflow.runtime.program import Program

__all__ = ["SUPPORTED", "CModel", "generate", "lower"]


def generate(program: Program, out_dir: str | Path, source: str | None = None) -> CModel:
    """Lower ``program`` and write its C project into ``out_dir``.

    ``source`` names the model in the generated files' comments (default: the program's file name).
    Returns the lowered ``CModel`` (shapes, quantization, arena, constants).
    """
    from edgeflow.codegen.emit import write

    model = lower(program)  # raises before anything is written
    write(model, out_dir, source or (program.path.name if program.path else "program"))
    return model
