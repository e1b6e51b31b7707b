"""Differentiable NAS figures (issue 14): PIT on the MNIST-1D ``tcn`` (a strength sweep and a DUCCIO
latency target on cortex_m4), PIT from the over-parameterised seed of ``recipe=dnas_pit_tcn_wide`` (the
search space's largest member, as in PIT / PLiNIO), and mixed precision on the digits ``cnn`` against the
uniform 4-bit model.

    .venv/bin/python benchmarks/dnas_figures.py [--only pit|latency|wide|mps] [--seed 0] [--strengths 0.5,1,2]
        [--wide-strengths 2,3,5]

The seed tcn is trained once (``recipe=train_float``) and every PIT run starts from its state
(``model.checkpoint``), so the runs differ only in the search. Prints per run the parameters before /
after, their ratio, the test accuracy after fine-tuning and its drop against the seed, the estimate
of the exported model on the target and the architecture found.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile

PIT = ["recipe=dnas_pit_tcn", "~stages.train", "~stages.qat", "~stages.export", "~stages.profile",
       "stages.dnas.arch_optimizer=sgd", "stages.dnas.arch_lr=0.005"]
WIDE = ["recipe=dnas_pit_tcn_wide", "~stages.train", "~stages.qat", "~stages.export", "~stages.profile"]
UNIFORM4 = ["recipe=qat_int8", "stages.qat.weight_bits=4", "stages.qat.max_epochs=8", "stages.qat.lr=0.001",
            "~stages.analyze", "~stages.analyze_int8"]


def _arch(path: str) -> str:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        cell = f"{r['layer']}:{r['channels']}"
        if r.get("kernel"):
            cell += f"/k{r['kernel']}d{r['dilation']}"
        if r.get("weight_bits"):
            cell += f"/w{r['weight_bits']}a{r['act_bits']}"
        out.append(cell)
    return " ".join(out)


def _pit_row(label: str, r: object) -> None:
    m = r.metrics
    print(f"{label:<26} params {m['dnas/params_before']:6.0f} -> {m['dnas/params']:6.0f} "
          f"({m['dnas/params_ratio']:5.2f}x)  acc {m['dnas/test_acc']:6.2f} (drop {m['dnas/acc_drop']:5.2f})  "
          f"{m['dnas/latency_ms']:.3f} ms  flash {m['dnas/flash_bytes']:.0f} B  | {_arch(r.artifacts['dnas/architecture'])}")


def main() -> None:
    import edgeflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["pit", "latency", "wide", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strengths", default="0.5,1,2")
    parser.add_argument("--wide-strengths", default="2,3,5")
    parser.add_argument("--latency-ms", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_bench_"))
    common = ["trainer.progress_bar=false", "tracking.enabled=false", f"seed={args.seed}"]
    if args.only in (None, "pit", "latency"):
        seed = edgeflow.run(edgeflow.compose(["recipe=train_float", "model=tcn", "dataset=mnist1d", "~stages.export",
                                              "stages.train.max_epochs=40", "stages.train.lr=0.005", *common]))
        state = f"model.checkpoint={seed.run_dir / 'state'}"
        print(f"seed tcn: test_acc {seed.metrics['evaluate/test_acc']:.2f}")
        if args.only in (None, "pit"):
            for s in args.strengths.split(","):
                r = edgeflow.run(edgeflow.compose([*PIT, state, f"stages.dnas.strength={s}", *common]))
                _pit_row(f"pit strength={s}", r)
        if args.only in (None, "latency"):
            r = edgeflow.run(edgeflow.compose([*PIT, state, "stages.dnas.cost=null", "stages.dnas.target_strength=1",
                                               f"+stages.dnas.targets.latency_ms={args.latency_ms}", *common]))
            _pit_row(f"pit latency <= {args.latency_ms} ms", r)
    if args.only in (None, "wide"):
        # the wide seed (the recipe's model and train stage), trained once; every strength starts from it
        seed = edgeflow.run(edgeflow.compose(["recipe=dnas_pit_tcn_wide", "~stages.dnas", "~stages.qat",
                                              "~stages.export", "~stages.profile", *common]))
        state = f"model.checkpoint={seed.run_dir / 'state'}"
        print(f"wide seed tcn: test_acc {seed.metrics['evaluate/test_acc']:.2f}")
        for s in args.wide_strengths.split(","):
            r = edgeflow.run(edgeflow.compose([*WIDE, state, f"stages.dnas.strength={s}", *common]))
            _pit_row(f"wide pit strength={s}", r)
    if args.only in (None, "mps"):
        r = edgeflow.run(edgeflow.compose(["recipe=dnas_mps_cnn", *common]))
        u = edgeflow.run(edgeflow.compose([*UNIFORM4, *common]))
        m, n = r.metrics, u.metrics
        print(f"mps digits cnn: weight bytes {m['dnas/weight_bytes']:.0f} (mean {m['dnas/weight_bits']:.2f} bits), "
              f"test_acc {m['dnas/test_acc']:.2f}, runtime {m['profile/test_acc']:.2f} "
              f"(agreement {m['profile/agreement']:.1f} %), profile flash {m['profile/flash_bytes']:.0f} B "
              f"| {_arch(r.artifacts['dnas/architecture'])}")
        print(f"uniform W4A8 qat: weight bytes {n['qat/weight_bytes']:.0f}, test_acc {n['qat/test_acc']:.2f}, "
              f"runtime {n['profile/test_acc']:.2f}, profile flash {n['profile/flash_bytes']:.0f} B")


if __name__ == "__main__":
    main()
