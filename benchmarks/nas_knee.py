"""The NAS acceptance run (issue 13): ``recipe=nas_tcn_mnist1d`` (40 NSGA-II trials over the
tcn_blocks space, the knee retrained 40 epochs) against the hand-written ``tcn`` trained by the same
recipe without its nas stage.

    .venv/bin/python benchmarks/nas_knee.py [extra overrides for every run...] [--seed 0] [--retrain-seeds 1 2]

Prints test accuracy, int8 latency on cortex_m4 (the analyze stage at 8 bits), params and flash of
both models, the speed-up and the accuracy difference. ``--retrain-seeds``: the knee's architecture
and the tcn trained again (the recipe without its nas stage) at each further seed, and the means.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    import edgeflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-seeds", nargs="*", type=int, default=[])
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_nas_knee_"))
    common = ["recipe=nas_tcn_mnist1d", "trainer.progress_bar=false", "tracking.enabled=false",
              "cache.enabled=false", *args.overrides]

    def show(label: str, seed: int, m: dict, started: float) -> None:
        nas = {k: v for k, v in m.items() if k.startswith("nas/")}
        print(f"{label:<18} seed {seed}  test_acc {m['evaluate/test_acc']:6.2f}  latency {m['analyze/latency_ms']:6.3f} ms  "
              f"params {m['analyze/params']:7.0f}  flash {m['analyze/flash_bytes']:7.0f} B  "
              f"{time.perf_counter() - started:.0f} s  {nas if nas else ''}", flush=True)

    results: dict[str, list[dict]] = {"knee (nas)": [], "hand-written tcn": []}
    knee_model: list[str] = []
    for seed in (args.seed, *args.retrain_seeds):
        for label, extra in (("knee (nas)", []), ("hand-written tcn", ["~stages.nas"])):
            if label.startswith("knee") and seed != args.seed:
                extra = ["~stages.nas", *knee_model]  # the searched architecture, trained at another seed
            started = time.perf_counter()
            r = edgeflow.run(edgeflow.compose([*common, f"seed={seed}", *extra]))
            results[label].append(r.metrics)
            show(label, seed, r.metrics, started)
            if label.startswith("knee") and seed == args.seed:
                line = (r.run_dir / "nas" / "architecture.yaml").read_text().splitlines()[2]
                print("  architecture:", line, flush=True)
                knee_model = [t for t in line.split() if t.startswith("model.")]
    knee, tcn = results["knee (nas)"], results["hand-written tcn"]
    speed_up = tcn[0]["analyze/latency_ms"] / knee[0]["analyze/latency_ms"]
    print(f"seed {args.seed}: speed-up {speed_up:.2f}x, test accuracy "
          f"{knee[0]['evaluate/test_acc'] - tcn[0]['evaluate/test_acc']:+.2f} points")
    if args.retrain_seeds:
        k = [m["evaluate/test_acc"] for m in knee]
        t = [m["evaluate/test_acc"] for m in tcn]
        print(f"mean over seeds {[args.seed, *args.retrain_seeds]}: knee {statistics.mean(k):.2f} ± "
              f"{statistics.stdev(k):.2f}, tcn {statistics.mean(t):.2f} ± {statistics.stdev(t):.2f}, "
              f"difference {statistics.mean(k) - statistics.mean(t):+.2f} points")


if __name__ == "__main__":
    main()
