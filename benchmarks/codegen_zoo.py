"""Generated C on the zoo: host and Cortex-M4 (QEMU mps2-an386) bit-exactness, sizes, instructions.

    python benchmarks/codegen_zoo.py [--models cnn,tcn,resnet8,dscnn,mobilenet_v1] [--samples 16]
                                     [--qemu-samples 2] [--hardware cortex_m4] [--tflite F.tflite,...]
                                     [--weight-bits 8] [--portable]

For each zoo model (seeded random weights, edgeflow's int8 QDQ export calibrated on random data):
lower it in ``tflm`` rounding, generate the C project, check ``--samples`` random inputs on the host
build and ``--qemu-samples`` under QEMU against ``Program.run(x, rounding="tflm")``, and print a
markdown table: bit-equal samples, the profile's flash beside the ``.rodata`` of ``weights.o``, the
planner's arena beside the library's ``.bss``, the library's ``.text``, instructions per inference
(QEMU ``-icount shift=0`` + the board's 25 MHz timer; instructions, not cycles), MACs/instruction, and
the target model's int8 MAC/cycle with its latency estimate and the cycles it implies (latency × clock). ``--tflite`` adds int8 .tflite files
(default: the MLPerf Tiny files of ``tests/data/mlperf_tiny`` when present), fed random int8 inputs. Without the ARM toolchain only the host
columns are filled (``make arm-toolchain``).

``--weight-bits N`` quantizes the zoo models W<N>A8 (.tflite files are left out) and adds the bytes the
weights would take one byte each (the generator before packing) beside the packed ``.rodata``.
``--portable`` also builds each project for a core without the DSP extension (``-mcpu=cortex-m3``, run
on the same board: the portable kernels) and prints its instructions per inference beside the DSP
kernels' (``kernels.c`` selects them with ``__ARM_FEATURE_DSP``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
MLPERF = Path(__file__).resolve().parents[1] / "tests" / "data" / "mlperf_tiny"


def unpacked_bytes(program) -> str:
    """The program's flash with every weight one byte (what the generator stored before packing)."""
    from edgeflow.runtime import costs

    nodes = [n for n in program.ir.nodes if n.kind in ("conv", "fully_connected") and "weight" in n.params]
    return f"{program.flash_bytes + sum(n.params['weight'].size - costs.weight_bytes(n) for n in nodes):,}"


def portable_instructions(program, model, project: Path, x: np.ndarray) -> float:
    """Instructions per inference of ``project`` built for a core without the DSP extension (-mcpu=cortex-m3:
    the portable kernels) on the same QEMU board; its outputs checked against the runtime."""
    import shutil
    import subprocess

    from edgeflow.codegen import build
    from edgeflow.codegen.verify import runtime_io

    plain = shutil.copytree(project, project.with_name(project.name + "_portable"),
                            ignore=shutil.ignore_patterns("arm", "*.elf", "model_test"))
    subprocess.run(["make", "-s", "arm", "ARM_CFLAGS=-mcpu=cortex-m3 -mthumb -Os -ffunction-sections -fdata-sections "
                    "-std=c99 -Wall -Wextra -Werror"], cwd=plain, check=True, capture_output=True)
    xi, ref = runtime_io(program, model, x)
    run = build.run_qemu(plain, xi, model.input_size, model.output_size)
    if not np.array_equal(run.outputs, ref):
        raise SystemExit(f"{project.name}: the portable build differs from the runtime")
    return run.instructions / len(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cnn,tcn,resnet8,dscnn,mobilenet_v1")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--qemu-samples", type=int, default=2)
    p.add_argument("--hardware", default="cortex_m4")
    p.add_argument("--tflite", default=",".join(str(f) for f in sorted(MLPERF.glob("*.tflite"))))
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--portable", action="store_true")
    args = p.parse_args()

    import edgeflow.runtime as rt
    from edgeflow.codegen import generate
    from edgeflow.codegen.verify import verify
    from edgeflow.hardware import load as load_hw
    from tests.codegen_helpers import zoo_export_bits
    from tests.runtime_helpers import ZOO, zoo_qdq_export

    hw = load_hw(args.hardware)
    mpc = hw.cfg.mac_per_cycle["int8"]
    extra = (["weights one byte each"] if args.weight_bits != 8 else []) + \
        (["portable instructions / inference", "portable MACs / instruction"] if args.portable else [])
    print(f"| model | MACs | host bit-equal | QEMU bit-equal | profile flash | weights.o .rodata | arena | .bss | "
          f".text | instructions / inference | MACs / instruction | {args.hardware} MAC/cycle | profile latency ms | "
          "model cycles |" + "".join(f" {c} |" for c in extra))
    print("|---|" + "---:|" * (13 + len(extra)))
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(name, None) for name in args.models.split(",") if name]
        jobs += [(Path(f).name, Path(f)) for f in args.tflite.split(",") if f and args.weight_bits == 8]
        for name, path in jobs:
            zoo = path is None
            if zoo:
                path = zoo_qdq_export(name, Path(tmp)) if args.weight_bits == 8 else \
                    zoo_export_bits(name, Path(tmp), args.weight_bits)
            program = rt.load(path, rounding="tflm")
            rng = np.random.default_rng(0)
            if zoo:
                x = rng.normal(0, 1, (args.samples, *ZOO[name][0])).astype(np.float32)
            else:
                gi = program.inputs[0]
                x = rng.integers(-128, 128, (args.samples, *gi.shape[1:])).astype(gi.dtype)
            model = generate(program, Path(tmp) / f"c_{name}")
            v = verify(program, model, Path(tmp) / f"c_{name}", x, qemu_samples=args.qemu_samples)
            m = v.metrics
            lat = program.profile(hardware=hw).metrics()["latency_ms"]
            qemu = "—" if "qemu_agreement" not in m else f"{m['qemu_agreement']:.0%} of {min(args.qemu_samples, len(x))}"
            size = (lambda s: f"{int(m[s]):,}" if s in m else "—")
            instr = f"{m['instructions']:,.0f}" if "instructions" in m else "—"
            mpi = f"{m['macs_per_instruction']:.3f}" if "instructions" in m else "—"
            cells = [unpacked_bytes(program)] if args.weight_bits != 8 else []
            if args.portable and "instructions" in m:
                n = portable_instructions(program, model, Path(tmp) / f"c_{name}", x[:args.qemu_samples])
                cells += [f"{n:,.0f}", f"{m['macs'] / n:.3f}"]
            print(f"| {name} | {int(m['macs']):,} | {m['host_agreement']:.0%} of {len(x)} | {qemu} | "
                  f"{program.flash_bytes:,} | {size('weights_rodata_bytes')} | {int(m['arena_bytes']):,} | "
                  f"{size('bss_bytes')} | {size('text_bytes')} | {instr} | {mpi} | {mpc} | {lat:.2f} | "
                  f"{lat * hw.cfg.clock_hz / 1000:,.0f} |" + "".join(f" {c} |" for c in cells))
            if v.skipped:
                print(f"<!-- {name}: {v.skipped} -->")

if __name__ == "__main__":
    main()
