"""``edgeflow-codegen``: an int8 model as a C99 library, checked bit-exact against the runtime.

    edgeflow-codegen MODEL.onnx -o DIR [--samples N] [--dataset NAME] [--arm auto|require|off]
                     [--qemu-samples N] [--hardware NAME]

Lowers MODEL (a quantized ONNX file, an int8 ``.tflite`` file, or a program saved by ``Program.save``,
``.json``) to the runtime's integer program in ``tflm`` rounding, writes the
C project into DIR (``edgeflow.codegen``), builds it with the host compiler and checks it on N
samples (random normal inputs, or the first N of a dataset's test split) against the runtime. With
the ARM toolchain (``make arm-toolchain``; ``--arm auto`` skips what is missing, ``require`` fails
without it) it also builds for the Cortex-M4, prints the library's section sizes beside the
profile's flash and arena, and runs the samples under QEMU mps2-an386: agreement and instructions
per inference (QEMU counts instructions, not cycles) beside the target's MAC/cycle assumption.

Errors are one line on stderr: exit 2 for a bad argument, 1 when the model cannot be lowered (an
unsupported op names the op and node, and nothing is written), a tool is missing or a build fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from tasks.args import OneLineArgumentParser

PROG = "edgeflow-codegen"
SUFFIXES = (".onnx", ".json", ".tflite")


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog=PROG, description="Generate a C99 library from an int8 model and check it "
                              "bit-exact against edgeflow's runtime (tflm rounding), on the host and on a "
                              "Cortex-M4 under QEMU.")
    p.add_argument("model", help="the .onnx or .tflite file (or a program saved by Program.save, .json)")
    p.add_argument("-o", "--output", required=True, help="folder of the generated C project")
    p.add_argument("--samples", type=int, default=16, help="samples checked against the runtime (default 16)")
    p.add_argument("--dataset", default=None, help="check on this dataset's test split (conf/dataset names) "
                   "instead of random inputs")
    p.add_argument("--arm", choices=("auto", "require", "off"), default="auto",
                   help="Cortex-M4 build + QEMU run: auto (skip without the toolchain), require, off")
    p.add_argument("--qemu-samples", type=int, default=4, help="samples run under QEMU (default 4)")
    p.add_argument("--hardware", default="cortex_m4", help="target whose int8 MAC/cycle is printed (default cortex_m4)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _fail(msg: str, code: int = 1) -> NoReturn:
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(code)


def _inputs(program, args):
    import numpy as np

    if args.dataset is None:
        shape = program.input_shapes()[program.inputs[0].name][1:]
        return np.random.default_rng(args.seed).normal(0, 1, (args.samples, *shape)).astype(np.float32)
    from omegaconf import OmegaConf

    from edgeflow import CONF_DIR
    from edgeflow.data import build_datamodule

    dm = build_datamodule(OmegaConf.load(CONF_DIR / "dataset" / f"{args.dataset}.yaml"), args.seed)
    dm.setup("test")
    xs = []
    for x, _ in dm.test_dataloader():
        xs.append(x.numpy().astype(np.float32))
        if sum(len(a) for a in xs) >= args.samples:
            break
    return np.concatenate(xs)[:args.samples]


def _report(program, result, mac_per_cycle: float) -> list[str]:
    m = result.metrics
    lines = [f"host: {m['host_agreement']:.2%} of {int(m['samples'])} samples bit-equal to the runtime (tflm)",
             f"constants {int(m['weights_bytes'])} B (profile flash {program.flash_bytes} B), "
             f"arena {int(m['arena_bytes'])} B, {int(m['macs'])} MACs"]
    if result.sizes:
        lines.append(f"{'object':10s} {'.text':>8s} {'.rodata':>8s} {'.data':>8s} {'.bss':>8s}")
        for name, s in result.sizes.items():
            lines.append(f"{name:10s} {s['text']:8d} {s['rodata']:8d} {s['data']:8d} {s['bss']:8d}")
    if "instructions" in m:
        lines.append(f"qemu mps2-an386: {m['qemu_agreement']:.2%} bit-equal; {m['instructions']:.0f} instructions per "
                     f"inference, {m['macs_per_instruction']:.3f} MACs/instruction (QEMU counts instructions, not "
                     f"cycles; the target model assumes {mac_per_cycle} MAC/cycle)")
    if result.skipped:
        lines.append(f"skipped: {result.skipped}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Generate, build and check; exit 2 on a bad argument, 1 if the model or a build fails."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not Path(args.model).is_file():
        parser.error(f"{args.model}: no such file")
    if Path(args.model).suffix not in SUFFIXES:
        parser.error(f"{args.model}: expected a {', '.join(SUFFIXES)} file")
    if args.samples < 1 or args.qemu_samples < 0:
        parser.error("--samples must be >= 1 and --qemu-samples >= 0")
    from edgeflow import CONF_DIR

    for key, val in (("dataset", args.dataset), ("hardware", args.hardware)):
        if val is not None and not (CONF_DIR / key / f"{val}.yaml").is_file():
            parser.error(f"--{key} {val}: unknown; known: "
                         + ", ".join(sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))))
    try:
        from edgeflow import runtime
        from edgeflow.codegen import build, generate
        from edgeflow.codegen.verify import verify
        from edgeflow.hardware import load as load_hw

        build.require_tools(build.HOST_TOOLS + (build.ARM_TOOLS + build.QEMU_TOOLS if args.arm == "require" else ()))
        program = runtime.load(args.model, rounding="tflm")
        model = generate(program, args.output, Path(args.model).name)
        result = verify(program, model, args.output, _inputs(program, args), arm=args.arm != "off",
                        qemu_samples=args.qemu_samples)
        mac_per_cycle = load_hw(args.hardware).cfg.mac_per_cycle["int8"]
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback at the CLI
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _fail(msg, 1)
    print(f"{args.output}: C project for {args.model}")
    for line in _report(program, result, mac_per_cycle):
        print(line)
    if result.metrics["host_agreement"] < 1.0 or result.metrics.get("qemu_agreement", 1.0) < 1.0:
        _fail("the C library disagrees with the runtime", 1)


if __name__ == "__main__":
    main()
