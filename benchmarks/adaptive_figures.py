"""Adaptive inference acceptance figures (issue 15): ``recipe=big_little`` (digits cnn, little cnn
[4, 8], cortex_m4; int8 parts exported and run on the int8 runtime), ``recipe=early_exit`` (MNIST-1D tcn, an exit at half depth) and
``recipe=partition`` (digits cnn, cortex_m4 -> rpi4), each at its defaults.

    .venv/bin/python benchmarks/adaptive_figures.py [--only big_little|early_exit|partition] [--seed 0]
                                                   [--png benchmarks/adaptive_big_little.png] [overrides...]

Prints the stage's metrics per run; ``--png`` copies big/little's ``curve.png`` there (the README's plot).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

RECIPES = ("big_little", "early_exit", "partition")
QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=RECIPES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", default=None)
    args, extra = parser.parse_known_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_adaptive_"))
    import edgeflow

    for recipe in [args.only] if args.only else RECIPES:
        r = edgeflow.run(edgeflow.compose([f"recipe={recipe}", f"seed={args.seed}", *QUIET, *extra]))
        stage = "partition" if recipe == "partition" else "adaptive"
        print(f"== {recipe} (seed {args.seed}): evaluate/test_acc {r.metrics['evaluate/test_acc']:.2f}")
        for key, value in r.metrics.items():
            if key.startswith(f"{stage}/") or key.startswith(f"profile/{stage}/"):
                print(f"   {key:32s} {value:.4f}")
        if recipe == "big_little" and args.png:
            shutil.copy(r.artifacts["adaptive/curve_png"], args.png)
            print(f"   curve: {args.png}")


if __name__ == "__main__":
    main()
