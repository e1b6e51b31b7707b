"""The stage cache on a target sweep: ``edgeflow -m recipe=quickstart hardware=cortex_m4,cortex_m7,gap9,rpi4``
with ``cache.enabled=false``, with the cache starting empty (cold), and rerun with the cache filled
(warm), each in a fresh project home through the real CLI (MLflow SQLite store, progress bar off).

    .venv/bin/python benchmarks/sweep_cache.py [--targets cortex_m4,cortex_m7,gap9,rpi4] [--extra KEY=VALUE ...]

Prints each sweep's wall time (the whole command, imports included, and the sum of the stages'
``wall_s``), the ratios to the uncached sweep, whether every job's final metrics (``wall_s`` aside)
are identical with and without the cache, and the bytes each sweep wrote: MLflow artifacts (files
whose data is new: a hard link to an earlier run's artifact writes nothing) and run folders. Timings
are noisy when other jobs share the cores. A tiny sweep: ``--extra stages.train.max_epochs=1
stages.prune.max_epochs=1 stages.prune.end=0 stages.qat.max_epochs=1 stages.qat.freeze_observers_epoch=0``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGEFLOW = ROOT / ".venv" / "bin" / "edgeflow"


def _files(folder: Path) -> dict[tuple[int, int], int]:
    """Every file's data under ``folder`` once: (device, inode) -> bytes."""
    return {(st.st_dev, st.st_ino): st.st_size for st in (p.stat() for p in folder.rglob("*") if p.is_file())}


def sweep(home: Path, args: list[str]) -> tuple[float, float, dict[str, dict[str, float]], dict[str, int]]:
    """Run the sweep in ``home``; (command seconds, summed stage seconds, job -> final metrics, bytes
    written: ``mlflow`` artifacts with new data, ``runs`` folders)."""
    env = {**os.environ, "EDGEFLOW_HOME": str(home), "EDGEFLOW_DATA": os.environ.get("EDGEFLOW_DATA", str(ROOT / "data"))}
    artifacts_before = _files(home / "mlartifacts")
    started = time.perf_counter()
    done = subprocess.run([str(EDGEFLOW), "-m", *args], cwd=home, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    written = {"mlflow": sum(size for key, size in _files(home / "mlartifacts").items() if key not in artifacts_before),
               "runs": sum(_files(home / "multirun").values())}
    jobs, stages = {}, 0.0
    for summary in sorted(home.glob("multirun/*/*/*/summary.json")):
        metrics = json.loads(summary.read_text())["metrics"]
        config = "".join(line for line in (summary.parent / ".hydra" / "overrides.yaml").read_text().splitlines(True)
                         if "cache.enabled" not in line)  # the job's target: the same key with and without cache
        stages += sum(v for k, v in metrics.items() if k.endswith("/wall_s"))
        jobs[config] = {k: v for k, v in metrics.items() if not k.endswith("/wall_s")}
    return seconds, stages, jobs, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="cortex_m4,cortex_m7,gap9,rpi4")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides (e.g. stages.train.max_epochs=5)")
    args = parser.parse_args()
    base = ["recipe=quickstart", f"hardware={args.targets}", "trainer.progress_bar=false", *args.extra]
    with tempfile.TemporaryDirectory() as tmp:
        plain_home, cached_home = Path(tmp) / "plain", Path(tmp) / "cached"
        plain_home.mkdir()
        cached_home.mkdir()
        plain = sweep(plain_home, [*base, "cache.enabled=false"])
        cold = sweep(cached_home, base)
        for folder in cached_home.glob("multirun/*"):  # the warm rerun's summaries only
            os.rename(folder, cached_home / f"cold_{folder.name}")
        warm = sweep(cached_home, base)
    print(f"uncached: {plain[0]:6.1f} s command, {plain[1]:6.1f} s in stages; written: "
          f"{plain[3]['mlflow']:,} B MLflow artifacts, {plain[3]['runs']:,} B run folders")
    for name, result in (("cold cache", cold), ("warm cache", warm)):
        same = len(result[2]) == len(plain[2]) and result[2] == plain[2]
        print(f"{name}: {result[0]:6.1f} s command ({result[0] / plain[0]:.2f}x), {result[1]:6.1f} s in stages "
              f"({result[1] / plain[1]:.2f}x); final metrics identical to uncached: {same}; written: "
              f"{result[3]['mlflow']:,} B MLflow artifacts, {result[3]['runs']:,} B run folders")


if __name__ == "__main__":
    main()
