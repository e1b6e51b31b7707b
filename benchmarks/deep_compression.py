"""Deep Compression acceptance figures (issue 12): digits ``cnn`` and mnist1d ``tcn`` through
``recipe=deep_compression``, and clustering alone on digits at 16 and 4 clusters.

    .venv/bin/python benchmarks/deep_compression.py [--only cnn|tcn|cluster] [--seed 0] [extra overrides...]

Prints, per run and per stage, test accuracy, drop against the float model and sizes: the float32
dense bytes, the bytes at rest (smallest format, Huffman included, tables and codebooks counted,
+ biases) and the executable flash on the recipe's target, for the model after each compressing
stage (``edgeflow.methods.clustering.compression_report`` on the stage's model, int8 codebooks after
QAT), and the profile's figures on the exported file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

RUNS = {
    "cnn": ["recipe=deep_compression"],
    "tcn": ["recipe=deep_compression", "model=tcn", "dataset=mnist1d", "stages.train.max_epochs=40",
            "stages.prune.max_epochs=60", "stages.prune.end=20", "stages.prune.lr=0.02",
            "stages.prune.weight_decay=0.0001"],
}
CLUSTER_ALONE = ["recipe=deep_compression", "~stages.prune", "~stages.qat", "~stages.export", "~stages.profile",
                 "stages.cluster.linear_bits=null"]


def _row(label: str, metrics: dict[str, float], stage: str) -> str:
    get = lambda k: metrics.get(f"{stage}/{k}", float("nan"))  # noqa: E731
    return (f"{label:<28} {stage:<9} acc {get('test_acc'):6.2f}  drop {get('acc_drop'):5.2f}  "
            f"rest {get('bytes_at_rest'):8.0f} B  flash {get('flash_bytes'):8.0f} B  "
            f"ratio {get('size_ratio'):6.2f}x  flash ratio {get('flash_ratio'):5.2f}x"
            + (f"  (before fine-tuning {get('clustered_acc'):.2f})" if stage == "cluster" else ""))


def main() -> None:
    import edgeflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["cnn", "tcn", "cluster"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hardware", default="cortex_m4")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("EDGEFLOW_HOME", tempfile.mkdtemp(prefix="edgeflow_bench_"))
    common = ["trainer.progress_bar=false", "tracking.enabled=false", f"seed={args.seed}", f"hardware={args.hardware}"]
    jobs = [(k, v) for k, v in RUNS.items() if args.only in (None, k)]
    if args.only in (None, "cluster"):
        jobs += [(f"cluster alone, {k} clusters", [*CLUSTER_ALONE, f"stages.cluster.clusters={k}"]) for k in (16, 4)]
    for label, overrides in jobs:
        start = time.perf_counter()
        plots = [] if "~stages.profile" in overrides else ["stages.profile.plots=false"]
        result = edgeflow.run(edgeflow.compose([*overrides, *common, *plots, *args.overrides]))
        m = dict(result.metrics)
        _add_sizes(result, m, args.hardware)
        print(f"== {label}: float {m['evaluate/test_acc']:.2f} %  ({time.perf_counter() - start:.0f} s)")
        for stage in ("prune", "cluster", "qat", "profile"):
            if f"{stage}/test_acc" in m:
                print(_row(label, m, stage))


def _add_sizes(result, metrics: dict[str, float], hardware: str) -> None:
    """Sizes of the final model (after QAT: int8 codebooks) under the ``qat`` key, from the model itself."""
    from edgeflow.hardware import load
    from edgeflow.methods.clustering import compression_report

    if "qat/test_acc" in metrics:
        supported = tuple(load(hardware).cfg.sparse_formats)
        _, totals = compression_report(result.state.model, result.state.input_shape, supported)
        metrics.update({f"qat/{k}": v for k, v in totals.items()})
        if "profile/flash_bytes" in metrics:  # the profile's flash adds requantization parameters
            metrics["profile/flash_ratio"] = totals["float32_bytes"] / metrics["profile/flash_bytes"]


if __name__ == "__main__":
    main()
