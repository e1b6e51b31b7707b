"""Distillation acceptance figures (issue 15): a tcn student of 8 channels (< 1/4 of the teacher's
parameters) distilled from the default tcn teacher on MNIST-1D, against the same student trained
alone with the same loop, epochs, learning rate and initial weights (``alpha=0``: cross-entropy
only), averaged over seeds.

    .venv/bin/python benchmarks/distill_kd.py [--seeds 0 1 2] [--epochs 40] [--teacher-epochs 40]
                                              [--alpha 0.9] [--temperature 4] [extra overrides...]

Per seed: ``recipe=train_float model=tcn dataset=mnist1d`` trains the teacher; two runs of the
``distill`` stage alone (``teacher=<its state>``) train the student with ``alpha`` and with 0.
Prints one row per seed and the mean gain (points of test accuracy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--teacher-epochs", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--temperature", type=float, default=4.0)
    args, extra = parser.parse_known_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_kd_"))
    import edgeflow

    rows = []
    for seed in args.seeds:
        teacher = edgeflow.run(edgeflow.compose([
            "recipe=train_float", "model=tcn", "dataset=mnist1d", "~stages.export", f"seed={seed}",
            f"stages.train.max_epochs={args.teacher_epochs}", "stages.train.lr=0.005", *QUIET]))
        accs = {}
        for alpha in (args.alpha, 0.0):
            r = edgeflow.run(edgeflow.compose([
                "recipe=distill_tcn", "~stages.train", "~stages.evaluate", "~stages.export", f"seed={seed}",
                f"stages.distill.teacher={teacher.run_dir / 'state'}", f"stages.distill.alpha={alpha}",
                f"stages.distill.temperature={args.temperature}", f"stages.distill.max_epochs={args.epochs}",
                *QUIET, *extra]))
            accs[alpha] = r.metrics["distill/test_acc"]
            m = r.metrics
        rows.append((seed, m["distill/teacher_acc"], accs[0.0], accs[args.alpha]))
        print(f"seed {seed}: teacher {m['distill/teacher_acc']:.2f} ({int(m['distill/teacher_params'])} params)  "
              f"student alone {accs[0.0]:.2f}  distilled {accs[args.alpha]:.2f}  "
              f"({int(m['distill/student_params'])} params, ratio {m['distill/param_ratio']:.3f})", flush=True)
    mean = [statistics.mean(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"mean over {len(rows)} seeds: teacher {mean[0]:.2f}  student alone {mean[1]:.2f}  "
          f"distilled {mean[2]:.2f}  gain {mean[2] - mean[1]:+.2f} points")


if __name__ == "__main__":
    main()
