"""NAS strategies at the same budget (issue 13): hypervolume of the (val_acc, latency_ms) front on
mnist1d / tcn space / cortex_m4 at int8, per strategy and seed, through ``recipe=nas_tcn_mnist1d``
(its nas stage alone, over the whole bundled tcn space, no latency constraint).

    .venv/bin/python benchmarks/nas_hypervolume.py [--strategies random nsga2 evolution rl]
        [--seeds 0 1 2] [--trials 24] [--epochs 3] [--subset 0.5] [extra overrides...]

Every search runs ``--trials`` trials of ``--epochs`` proxy epochs on ``--subset`` of the training
split; evolution and rl rank by the MnasNet reward with T = 3 ms. The hypervolume uses one scale for
every search: accuracy as error fraction (reference 1), latency divided by the latency of the space's
largest candidate (4 blocks of 32 channels, kernel 9; reference 1.1). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def largest_latency() -> float:
    """Latency (ms, cortex_m4, int8) of the tcn space's largest candidate."""
    from edgeflow.hardware import analyze, load
    from edgeflow.models import build_model

    model = build_model("tcn", (1, 40), 10, channels=[32] * 4, kernel_size=9)
    return load("cortex_m4").estimate(analyze(model, (1, 40), default_bits=8), warn=False).latency_ms


def main() -> None:
    import optuna

    import edgeflow
    from edgeflow.methods.nas.selection import front_of, normalized_hypervolume

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["random", "nsga2", "evolution", "rl"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=float, default=0.5)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_nas_bench_"))
    db = f"sqlite:///{os.environ['EDGEFLOW_HOME']}/nas_bench.db"
    scale = {"latency_ms": largest_latency()}
    rows = []
    for strategy in args.strategies:
        volumes, fronts, best, walls = [], [], [], []
        for seed in args.seeds:
            name = f"bench-{strategy}-s{seed}-n{args.trials}-e{args.epochs}-d{args.subset}"
            started = time.perf_counter()
            edgeflow.run(edgeflow.compose([
                "recipe=nas_tcn_mnist1d", "search_space@stages.nas.space=tcn", "~stages.train", "~stages.evaluate", "~stages.analyze",
                "trainer.progress_bar=false", "tracking.enabled=false", "cache.enabled=false", f"seed={seed}",
                f"stages.nas.strategy={strategy}", f"stages.nas.n_trials={args.trials}",
                f"stages.nas.trial_epochs={args.epochs}", f"stages.nas.subset={args.subset}",
                "stages.nas.reward_target=3.0", f"stages.nas.storage={db}", f"stages.nas.study_name={name}",
                "stages.nas.constraints=[fits]", "stages.nas.space.choices.blocks.depth.low=1",  # the whole tcn space
                "stages.nas.plots=false", *args.overrides]))
            walls.append(time.perf_counter() - started)
            complete = optuna.load_study(study_name=name, storage=db).get_trials(
                states=(optuna.trial.TrialState.COMPLETE,))
            volumes.append(normalized_hypervolume(complete, ["val_acc", "latency_ms"], scale))
            fronts.append(len(front_of(complete, ["val_acc", "latency_ms"])))
            best.append(max(t.user_attrs["val_acc"] for t in complete))
            print(f"{strategy:<10} seed {seed}: hypervolume {volumes[-1]:.4f}  front {fronts[-1]}  "
                  f"best val_acc {best[-1]:.2f}  {walls[-1]:.0f} s", flush=True)
        rows.append((strategy, volumes, fronts, best, walls))
    print(f"\n{args.trials} trials x {args.epochs} epochs on {args.subset:g} of the training split; latency scale "
          f"{scale['latency_ms']:.2f} ms\n")
    seeds = " | ".join(f"seed {s}" for s in args.seeds)
    print(f"| strategy | {seeds} | mean ± sd | front size (mean) | best val_acc (mean) | s per search |")
    print("|---" * (len(args.seeds) + 5) + "|")
    for strategy, volumes, fronts, best, walls in rows:
        sd = statistics.stdev(volumes) if len(volumes) > 1 else 0.0
        print(f"| {strategy} | " + " | ".join(f"{v:.4f}" for v in volumes)
              + f" | {statistics.mean(volumes):.4f} ± {sd:.4f} | {statistics.mean(fronts):.1f} | "
              f"{statistics.mean(best):.2f} | {statistics.mean(walls):.0f} |")


if __name__ == "__main__":
    main()
