"""The MLPerf Tiny int8 .tflite files on edgeflow's runtime (tflm rounding) against LiteRT.

    python benchmarks/runtime_tflite.py [--batch 64] [--repeats 5]

For each model in ``tests/data/mlperf_tiny``: samples/s of ``Program.run`` on a batch, of LiteRT's
reference kernels (``BUILTIN_REF``, the oracle, sample by sample) and of LiteRT's default optimized
kernels (batch resized), calls interleaved, best of ``--repeats``; and the share of outputs bit-equal
to the reference kernels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mlperf_tiny"


def _optimized_interpreter(path: Path, batch: int):
    """LiteRT with its optimized kernels (one thread), resized to take the whole batch at once."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.AUTO, num_threads=1)
    d = it.get_input_details()[0]
    it.resize_tensor_input(d["index"], [batch, *d["shape"][1:]])
    it.allocate_tensors()
    return it, d["index"], it.get_output_details()[0]["index"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import edgeflow.runtime as rt
    from edgeflow.runtime.profiler import litert_reference

    print(f"batch {args.batch}; samples/s, best of {args.repeats}")
    print(f"{'model':22s} {'runtime':>10s} {'LiteRT ref':>11s} {'LiteRT opt':>11s} {'bit-equal':>10s}")
    for path in sorted(MODELS.glob("*.tflite")):
        prog = rt.load(path)
        gi = prog.inputs[0]
        x = np.random.default_rng(0).integers(-128, 128, (args.batch, *gi.shape[1:])).astype(gi.dtype)
        reference = litert_reference(path)
        opt, oi, oo = _optimized_interpreter(path, args.batch)

        def run_ref() -> np.ndarray:
            return reference(x)

        def run_opt() -> np.ndarray:
            opt.set_tensor(oi, x)
            opt.invoke()
            return opt.get_tensor(oo)

        best = {"rt": np.inf, "ref": np.inf, "opt": np.inf}
        for _ in range(args.repeats):
            for key, f in (("rt", lambda: prog.run(x)), ("ref", run_ref), ("opt", run_opt)):
                t = time.perf_counter()
                f()
                best[key] = min(best[key], time.perf_counter() - t)
        eq = float((prog.run(x)[0] == run_ref()).mean())
        print(f"{path.name:22s} {args.batch / best['rt']:10.1f} {args.batch / best['ref']:11.1f} "
              f"{args.batch / best['opt']:11.1f} {eq * 100:9.3f}%")


if __name__ == "__main__":
    main()
