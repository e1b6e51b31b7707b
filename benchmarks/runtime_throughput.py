"""Throughput of edgeflow's int8 reference runtime against onnxruntime on the same int8 file.

    python benchmarks/runtime_throughput.py [--batch 64] [--threads 2] [--repeats 5] [--models resnet8,dscnn] [--pause S]

For each zoo conv model (random weights): export to ONNX, post-training quantize with onnxruntime's
``quantize_static`` (QOperator, per-channel int8), then time ``InferenceSession.run`` (ORT_ENABLE_ALL)
and ``Program.run`` on the same batch, both limited to ``--threads`` threads (ORT intra-op threads,
BLAS and OpenMP threads via threadpoolctl; the runtime runs its torch kernels on one thread
regardless, see ``edgeflow.runtime.intgemm.single_threaded_torch``). Prints samples/s, GMAC/s of
both, the runtime/onnxruntime ratio (best of the interleaved calls; the median and range of the
per-pair wall-time ratios; the median per-pair ratio of CPU time, the honest figure on a loaded
machine) and the bit-equality rate of the outputs. Goal: ratio >= 1/3 against
``--format QDQ --threads 1``.

``--format QDQ`` times onnxruntime's QDQ path (on x86 it rewrites int8 QDQ graphs to uint8 and uses
its VNNI/AVX2 u8s8 kernels) — far faster than its int8 QOperator kernels.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = {"resnet8": ((3, 32, 32), 10), "dscnn": ((1, 49, 10), 12), "mobilenet_v1": ((3, 96, 96), 2),
          "tcn": ((1, 64), 10), "cnn": ((1, 28, 28), 10)}


def quantized_file(name: str, out_dir: Path, fmt: str = "QOperator") -> Path:
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgeflow.models import build_model

    shape, classes = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    f, p, q = out_dir / f"{name}.onnx", out_dir / f"{name}_pre.onnx", out_dir / f"{name}_{fmt}.onnx"

    class Reader:
        def __init__(self):
            self.it = iter([{"input": np.random.default_rng(i).normal(0, 1, (8, *shape)).astype(np.float32)} for i in range(4)])

        def get_next(self):
            return next(self.it, None)

    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(f), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}}, opset_version=17, dynamo=False)
        quant_pre_process(str(f), str(p), skip_symbolic_shape=True)
        quantize_static(str(p), str(q), Reader(), quant_format=getattr(QuantFormat, fmt), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return q


def interleaved_times(fa, fb, repeats: int, pause: float = 0.0) -> tuple[np.ndarray, ...]:
    """Wall and CPU times of ``repeats`` calls of ``fa`` and of ``fb`` (arrays: wall a, wall b, cpu
    a, cpu b), calls interleaved so that load changes on a shared machine hit both alike (pair i:
    adjacent calls). ``pause`` seconds before each timed call let the previous call's worker threads
    (onnxruntime's intra-op pool spins after ``run`` returns) go idle, so that neither engine is
    timed while the other's threads still hold the cores: needed with several threads only (at one
    thread onnxruntime has no pool, and back-to-back calls measure steady-state throughput; on this
    machine a 10 ms pause or spin before each call costs the runtime ~15 % and onnxruntime ~5 %,
    whose working set is smaller). CPU time (the process's, all threads) is the steadier figure on a
    loaded machine: a preempted call's wall time grows, its CPU time not."""
    fa(), fb()
    wa, wb, ca, cb = [], [], [], []
    for _ in range(repeats):
        for f, ws, cs in ((fa, wa, ca), (fb, wb, cb)):
            time.sleep(pause)
            t, c = time.perf_counter(), time.process_time()
            f()
            ws.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
    return np.array(wa), np.array(wb), np.array(ca), np.array(cb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--format", default="QOperator", choices=("QOperator", "QDQ"))
    ap.add_argument("--models", default="resnet8,dscnn,mobilenet_v1,tcn,cnn")
    ap.add_argument("--pause", type=float, default=None,
                    help="seconds idle before each timed call (default: 0.01 with several threads, else 0)")
    args = ap.parse_args()

    import onnxruntime as ort
    from threadpoolctl import threadpool_limits

    import edgeflow.runtime as rt
    from edgeflow.export.ort import ort_session

    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=args.threads):
        for name in args.models.split(","):
            path = quantized_file(name, Path(tmp), args.format)
            shape, _ = MODELS[name]
            x = np.random.default_rng(0).normal(0, 1, (args.batch, *shape)).astype(np.float32)
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            prog = rt.load(path)
            ta, tb, ca, cb = interleaved_times(lambda: sess.run(None, {"input": x}), lambda: prog.run(x), args.repeats,
                                               args.pause if args.pause is not None else 0.01 * (args.threads > 1))
            t_ort, t_rt, pair = ta.min(), tb.min(), ta / tb
            reference = ort_session(path)  # int8 kept: the configuration the runtime is bit-equal to
            eq = float((prog.run(x)[0] == reference.run(None, {"input": x})[0]).mean())
            macs = prog.profile().macs * args.batch
            rows.append((name, args.batch / t_ort, args.batch / t_rt, t_ort / t_rt, np.median(pair), pair.min(),
                         pair.max(), np.median(ca / cb), macs / t_ort / 1e9, macs / t_rt / 1e9, eq))
    print(f"batch {args.batch}, {args.threads} thread(s), {args.format} per-channel int8, cpu count {os.cpu_count()}, "
          f"pause {args.pause if args.pause is not None else 0.01 * (args.threads > 1)} s; "
          f"samples/s and ratio from the best of {args.repeats} interleaved calls, then the median and range of the "
          "per-pair ratios of wall time, and the median per-pair ratio of CPU time")
    print(f"{'model':14s} {'ORT samples/s':>14s} {'runtime samples/s':>18s} {'ratio':>7s} {'median':>7s} {'range':>11s} "
          f"{'cpu med':>8s} {'ORT GMAC/s':>11s} {'rt GMAC/s':>10s} {'bit-equal':>10s}")
    for name, a, b, r, med, lo, hi, cpu, go, g, eq in rows:
        print(f"{name:14s} {a:14.1f} {b:18.1f} {r:7.2f} {med:7.2f} {lo:5.2f}-{hi:<5.2f} {cpu:8.2f} {go:11.2f} {g:10.2f} "
              f"{eq * 100:9.3f}%")


if __name__ == "__main__":
    main()
