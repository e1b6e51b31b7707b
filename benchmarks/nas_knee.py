"""The NAS acceptance run (issue 13): ``recipe=nas_tcn_mnist1d`` (40 NSGA-II trials, the knee
retrained 40 epochs) against the hand-written ``tcn`` trained by the same recipe without its nas stage.

    .venv/bin/python benchmarks/nas_knee.py [--seed 0] [extra overrides for both runs...]

Prints test accuracy, int8 latency on cortex_m4 (the analyze stage at 8 bits), params and flash of
both models, the speed-up and the accuracy difference.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    import edgeflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_nas_knee_"))
    common = ["recipe=nas_tcn_mnist1d", "trainer.progress_bar=false", "tracking.enabled=false",
              "cache.enabled=false", f"seed={args.seed}", *args.overrides]
    results = {}
    for label, extra in (("knee (nas)", []), ("hand-written tcn", ["~stages.nas"])):
        started = time.perf_counter()
        r = edgeflow.run(edgeflow.compose([*common, *extra]))
        m = r.metrics
        results[label] = m
        nas = {k: v for k, v in m.items() if k.startswith("nas/")}
        print(f"{label:<18} test_acc {m['evaluate/test_acc']:6.2f}  latency {m['analyze/latency_ms']:6.3f} ms  "
              f"params {m['analyze/params']:7.0f}  flash {m['analyze/flash_bytes']:7.0f} B  "
              f"{time.perf_counter() - started:.0f} s  {nas if nas else ''}", flush=True)
        if label.startswith("knee"):
            print("  architecture:", (r.run_dir / "nas" / "architecture.yaml").read_text().splitlines()[2])
    knee, tcn = results["knee (nas)"], results["hand-written tcn"]
    print(f"speed-up {tcn['analyze/latency_ms'] / knee['analyze/latency_ms']:.2f}x, "
          f"test accuracy {knee['evaluate/test_acc'] - tcn['evaluate/test_acc']:+.2f} points")


if __name__ == "__main__":
    main()
