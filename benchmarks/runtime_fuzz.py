"""Seeded mutation fuzzer of the int8 runtime over an exported QDQ model (issue 10, Deliver 6).

    .venv/bin/python benchmarks/runtime_fuzz.py [--model cnn] [--variants 5000] [--seed 0]

Each variant is the exported file with byte flips, a truncation, or a semantic corruption of an
initializer (scales, zero points, weights, biases, shapes: 0, negative, NaN, inf, 1e-45, huge,
another dtype) or of a node attribute (strides, pads, dilations, kernel_shape, group, axis), the
opset or the outputs. ``runtime.load`` + ``Program.run`` on a small finite input must either run or
raise ``RuntimeModelError``; anything else is an escape, a run over ``HANG_S`` seconds a hang. Where
onnxruntime also accepts and runs the variant, the outputs must be bit-equal.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HANG_S = 10.0
VALUES = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-45, 1e30, 2.0, 0.5, 127, 128, 255, 300, -129, 100000]
INT_ATTRS = [0, -1, 1, 2, 3, 5, 7, 100000]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def mutate(base: bytes, model, rng: np.random.Generator) -> tuple[str, bytes]:
    """One variant of ``base`` (the serialized ``model``): (kind, bytes)."""
    import onnx
    from onnx import helper, numpy_helper

    k = rng.integers(0, 10)
    if k <= 1:  # byte flips
        b = bytearray(base)
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        return "byteflip", bytes(b)
    if k == 2:
        return "truncate", base[: int(rng.integers(0, len(base)))]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if k <= 5:  # initializer
        t = m.graph.initializer[int(rng.integers(0, len(m.graph.initializer)))]
        a = numpy_helper.to_array(t).copy()
        how = rng.integers(0, 3)
        if how == 0 and a.size:
            v = VALUES[int(rng.integers(0, len(VALUES)))]
            flat = a.reshape(-1)
            with np.errstate(all="ignore"):
                if a.dtype.kind == "f":
                    flat[int(rng.integers(0, flat.size))] = v
                else:
                    info = np.iinfo(a.dtype)
                    iv = int(v) if np.isfinite(v) and abs(v) < 1e18 else 0
                    flat[int(rng.integers(0, flat.size))] = min(max(iv, int(info.min)), int(info.max))
            new = a
        elif how == 1:
            dt = [np.float32, np.float64, np.int8, np.uint8, np.int16, np.int32, np.int64][int(rng.integers(0, 7))]
            with np.errstate(all="ignore"):
                new = np.nan_to_num(a.astype(np.float64)).astype(dt) if a.dtype.kind == "f" else a.astype(dt)
        else:
            new = a.reshape(-1)[: max(0, a.size - int(rng.integers(1, 3)))] if a.size > 1 else a.reshape(1, 1)
        t.CopyFrom(numpy_helper.from_array(np.asarray(new), t.name))
        return "initializer", m.SerializeToString()
    if k <= 8:  # attribute
        nodes = [n for n in m.graph.node if n.attribute] or list(m.graph.node)
        n = nodes[int(rng.integers(0, len(nodes)))]
        if n.attribute and rng.random() < 0.8:
            a = n.attribute[int(rng.integers(0, len(n.attribute)))]
            v = INT_ATTRS[int(rng.integers(0, len(INT_ATTRS)))]
            if a.type == onnx.AttributeProto.INTS and a.ints:
                vals = list(a.ints)
                if rng.random() < 0.2:
                    vals = vals + [v]
                else:
                    vals[int(rng.integers(0, len(vals)))] = v
                new = helper.make_attribute(a.name, vals)
            elif a.type == onnx.AttributeProto.INT:
                new = helper.make_attribute(a.name, v)
            else:
                new = helper.make_attribute(a.name, float(VALUES[int(rng.integers(0, len(VALUES)))]))
            n.attribute.remove(a)
            n.attribute.append(new)
        else:
            name = ["axis", "strides", "dilations", "kernel_shape", "pads", "group"][int(rng.integers(0, 6))]
            v = INT_ATTRS[int(rng.integers(0, len(INT_ATTRS)))]
            n.attribute.append(helper.make_attribute(name, v if name in ("axis", "group") else [v, v]))
        return "attribute", m.SerializeToString()
    what = rng.integers(0, 3)
    if what == 0:
        m.opset_import[0].version = int([1, 9, 10, 13, 21, 22, 99][int(rng.integers(0, 7))])
    elif what == 1:
        del m.graph.output[:]
    else:
        del m.graph.node[int(rng.integers(0, len(m.graph.node)))]
    return "graph", m.SerializeToString()


def fuzz(path: str | Path, variants: int = 200, seed: int = 0, compare: bool = True, workdir: str | Path | None = None):
    """Run ``variants`` mutations of the model at ``path``; returns a dict of figures and the escapes."""
    import onnx

    from edgeflow import runtime
    from edgeflow.export.ort import ort_session

    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass
    path = Path(path)
    base = path.read_bytes()
    model = onnx.load_from_string(base)
    prog = runtime.load(path)
    gi = prog.inputs[0]
    shape = tuple(1 if d is None else d for d in gi.shape)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    rng = np.random.default_rng(seed)
    stats: Counter = Counter()
    kinds: Counter = Counter()
    escapes: list[str] = []
    mismatches: list[str] = []
    hangs: list[str] = []
    slowest = 0.0
    tmp = Path(workdir or tempfile.mkdtemp())
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(variants):
            kind, data = mutate(base, model, rng)
            kinds[kind] += 1
            p = tmp / f"v{i % 4}.onnx"
            p.write_bytes(data)
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, HANG_S)
            out = None
            try:
                out = runtime.load(p).run(x)
                stats["accepted"] += 1
            except runtime.RuntimeModelError as exc:
                stats["rejected"] += 1
                if "\n" in str(exc):
                    escapes.append(f"{i} {kind}: multi-line message {str(exc)[:200]!r}")
            except Hang:
                hangs.append(f"{i} {kind}")
            except BaseException as exc:  # noqa: BLE001 - an escape is what the fuzzer looks for
                if isinstance(exc, KeyboardInterrupt):
                    raise
                escapes.append(f"{i} {kind}: {type(exc).__name__}: {str(exc)[:200]}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.perf_counter() - t0)
            if out is None or not compare:
                continue
            try:
                ref = ort_session(p).run(None, {gi.name: x})
            except Exception:
                stats["accepted_ort_rejects"] += 1
                continue
            stats["both_accept"] += 1
            if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(out, ref)):
                mismatches.append(f"{i} {kind}")
    finally:
        signal.signal(signal.SIGALRM, old)
    return {"variants": variants, "kinds": dict(kinds), "accepted": stats["accepted"], "rejected": stats["rejected"],
            "both_accept": stats["both_accept"], "accepted_ort_rejects": stats["accepted_ort_rejects"],
            "escapes": escapes, "hangs": hangs, "mismatches": mismatches, "slowest_s": slowest}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--variants", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from runtime_helpers import zoo_qdq_export

    with tempfile.TemporaryDirectory() as d:
        path = zoo_qdq_export(args.model, Path(d))
        t0 = time.perf_counter()
        r = fuzz(path, args.variants, args.seed, workdir=d)
        dt = time.perf_counter() - t0
    print(f"model {args.model}, seed {args.seed}: {r['variants']} variants in {dt:.1f} s ({r['kinds']})")
    print(f"accepted {r['accepted']}, rejected {r['rejected']} (RuntimeModelError), escapes {len(r['escapes'])}, "
          f"hangs {len(r['hangs'])}, slowest {r['slowest_s']:.2f} s")
    print(f"accepted by both with onnxruntime: {r['both_accept']} (bit-equal: {r['both_accept'] - len(r['mismatches'])}), "
          f"accepted by the runtime but rejected by onnxruntime: {r['accepted_ort_rejects']}")
    for line in r["escapes"][:20] + r["mismatches"][:20]:
        print("  ", line)
    return 1 if r["escapes"] or r["hangs"] or r["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
