"""``edgeflow-profile``: profile any int8 ONNX file on edgeflow's integer reference runtime.

    edgeflow-profile MODEL.onnx|MODEL.tflite [hardware=NAME] [dataset=NAME] [--rounding onnx|tflm]
                     [--max-samples N] [--split test|val] [--no-agreement] [--csv FILE]

Prints a per-layer table (MACs, weight bits, flash, activation bytes, and with ``hardware=`` the
latency and energy on that target) with totals, the peak RAM of the greedy arena, and with
``dataset=`` the accuracy of the integer program and its agreement with onnxruntime (LiteRT's
reference kernels for a ``.tflite`` file, whose default rounding is tflm). Errors are one
line on stderr and a non-zero exit status: 2 for a bad argument (an unknown option or value, an
unknown ``hardware=`` / ``dataset=`` name, a model path that does not exist), checked before
anything heavy loads; 1 when the model cannot be read or run. Imports stay lazy so ``--help`` and
argument errors answer at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from tasks.args import OneLineArgumentParser

PROG = "edgeflow-profile"


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(
        prog=PROG,
        description="Profile an int8 ONNX (QDQ or QOperator) or .tflite file on edgeflow's integer reference runtime.",
        epilog="Targets: the names in conf/hardware (e.g. cortex_m4, cortex_m7, gap9). "
               "Datasets: the names in conf/dataset (e.g. digits, mnist1d, cifar10).")
    p.add_argument("model", help="path of the .onnx or int8 .tflite file, or of a program saved by Program.save (.json)")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="hardware=NAME and/or dataset=NAME")
    p.add_argument("--rounding", choices=("onnx", "tflm"), default=None,
                   help="requantization: onnx (bit-equal to onnxruntime; default for ONNX) or tflm (TFLite Micro; "
                        "default for .tflite)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="dataset split (default: test)")
    p.add_argument("--max-samples", type=int, default=0, help="limit the samples evaluated (0 = all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-agreement", action="store_true", help="skip the comparison with onnxruntime")
    p.add_argument("--csv", default=None, help="also write the per-layer table to this CSV file")
    p.add_argument("--seed", type=int, default=0)
    return p


def _fail(msg: str, code: int = 1) -> NoReturn:
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(code)


def _options(parser: OneLineArgumentParser, overrides: list[str]) -> dict[str, str]:
    """``hardware=`` / ``dataset=`` from ``overrides``; anything else, or an unknown name, is a bad argument.

    A hardware value ending in ``.yaml`` / ``.yml`` is a file of the user's own; other values must
    name a file of ``conf/hardware`` or ``conf/dataset``.
    """
    from edgeflow import CONF_DIR
    from edgeflow.core.suggest import did_you_mean

    opts: dict[str, str] = {}
    for ov in overrides:
        key, sep, val = ov.partition("=")
        if not sep or key not in ("hardware", "dataset") or not val:
            parser.error(f"{ov!r}: expected hardware=NAME or dataset=NAME")
        if key == "hardware" and Path(val).suffix in (".yaml", ".yml"):
            if not Path(val).is_file():
                parser.error(f"hardware={val}: no such file")
        else:
            names = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
            if val not in names:
                parser.error(f"{key}={val}: unknown {key}{did_you_mean(val, names)}; known: {', '.join(names)}")
        opts[key] = val
    return opts


def _dataset(name: str, seed: int, split: str):
    from omegaconf import OmegaConf

    from edgeflow import CONF_DIR
    from edgeflow.data import build_datamodule

    dm = build_datamodule(OmegaConf.load(CONF_DIR / "dataset" / f"{name}.yaml"), seed)
    dm.setup("fit")
    dm.setup("test")
    return dm.test_dataloader() if split == "test" else dm.val_dataloader()


def main(argv: list[str] | None = None) -> None:
    """Profile the model named on the command line; exit 2 on a bad argument, 1 if the model fails."""
    parser = _parser()
    args = parser.parse_args(argv)
    opts = _options(parser, args.overrides)
    if args.max_samples < 0:
        parser.error(f"--max-samples: must be >= 0 (0 = all), got {args.max_samples}")
    if args.batch_size < 1:
        parser.error(f"--batch-size: must be >= 1, got {args.batch_size}")
    if not Path(args.model).exists():
        parser.error(f"{args.model}: no such file")

    hw = None
    if "hardware" in opts:
        from edgeflow.hardware import load as load_hw

        try:
            hw = load_hw(opts["hardware"])
        except Exception as exc:  # noqa: BLE001 - a target file that does not load is a bad argument
            parser.error(f"hardware={opts['hardware']}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    try:
        from edgeflow import runtime

        if Path(args.model).is_dir():  # an adaptive system's export folder: policy.json + one file per part
            from edgeflow.stages._adaptive_deploy import profile_folder

            data = _dataset(opts["dataset"], args.seed, args.split) if "dataset" in opts else None
            print("\n".join(profile_folder(Path(args.model), hw, data, args.rounding)))
            return
        program = runtime.load(args.model, rounding=args.rounding)
        data = _dataset(opts["dataset"], args.seed, args.split) if "dataset" in opts else None
        prof = program.profile(hardware=hw, dataset=data, reference=False if args.no_agreement else None,
                               max_samples=args.max_samples or None, batch_size=args.batch_size)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except (ValueError, OSError, KeyError, RuntimeError, ImportError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _fail(msg, 1)
    except Exception as exc:  # noqa: BLE001 - never a traceback at the CLI
        _fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", 1)

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160)
    title = f"{args.model}  (rounding={program.rounding}{', ' + prof.hardware if prof.hardware else ''})"
    console.print(prof.table(title))
    for line in prof.summary_lines():
        console.print(line)
    if args.csv:
        prof.write_csv(args.csv)
        console.print(f"per-layer CSV: {args.csv}")


if __name__ == "__main__":
    main()
