"""Concurrent runs never mix (issue 10, acceptance): rounds of concurrent ``edgeflow`` runs in an
existing project folder and in fresh ones, each run compared with its sequential twin, then
concurrent multiruns in one fresh folder.

    .venv/bin/python benchmarks/concurrent_runs.py [--rounds 3] [--runs 3] [--sweeps 4] [--epochs 1]

Every run is the real CLI in its own process (quickstart, every stage, ``--epochs`` per training
stage). A run passes when it exits 0, its MLflow run is FINISHED, it has a folder of its own, and
every final metric in MLflow (``wall_s`` aside) equals its sequential twin's (same seed, run alone
in another folder; metrics only one of them has, from a newer checkout, are not compared). A sweep passes when all its jobs are FINISHED under its own parent run and it
has a folder of its own. Prints one line per round and a closing verdict; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGEFLOW = str(ROOT / ".venv" / "bin" / "edgeflow")


def overrides(epochs: int) -> list[str]:
    """quickstart with ``epochs`` per training stage (pruning reaches its target by the last one)."""
    return ["recipe=quickstart", f"stages.train.max_epochs={epochs}", f"stages.prune.max_epochs={epochs}",
            f"stages.prune.end={max(epochs - 1, 0)}", f"stages.qat.max_epochs={epochs}",
            "stages.qat.freeze_observers_epoch=0", "trainer.progress_bar=false", "trainer.num_threads=1",
            "cache.enabled=false"]  # every run computes: a stage-cache hit would make a round trivially equal


def _env(home: Path) -> dict[str, str]:
    import os

    return {**os.environ, "EDGEFLOW_HOME": str(home), "EDGEFLOW_DATA": os.environ.get("EDGEFLOW_DATA",
                                                                                      str(ROOT / "data"))}


def launch(home: Path, args: list[str]) -> list[int]:
    """Start one ``edgeflow`` process per argument list in ``home`` at once; their exit statuses."""
    procs = [subprocess.Popen([EDGEFLOW, *a], cwd=home, env=_env(home), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for a in args]
    codes = []
    for proc in procs:
        err = proc.communicate()[1]
        if proc.returncode:
            print(f"  exit {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}")
        codes.append(proc.returncode)
    return codes


def runs_of(home: Path, experiment: str = "quickstart") -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=10000) if exp else []


def final_metrics(run) -> dict[str, float]:  # noqa: ANN001 - an MLflow Run
    return {k: v for k, v in run.data.metrics.items() if not k.endswith("/wall_s")}


def same(metrics: dict[str, float], twin: dict[str, float]) -> bool:
    """Equal on every metric both report (a metric a newer checkout added is not compared), with the
    headline ``evaluate/test_acc`` among them; prints the keys that differ."""
    common = set(metrics) & set(twin)
    differ = sorted(k for k in common if metrics[k] != twin[k])
    if differ:
        print(f"  differ from the twin: {', '.join(differ)}")
    return "evaluate/test_acc" in common and not differ


def twins(seeds: list[int], epochs: int, work: Path) -> dict[int, dict[str, float]]:
    """Each seed run alone, one after the other, in its own folder: the reference metrics."""
    out = {}
    for seed in seeds:
        home = work / f"twin_{seed}"
        home.mkdir()
        assert launch(home, [[*overrides(epochs), f"seed={seed}"]]) == [0], f"twin seed {seed} failed"
        (run,) = runs_of(home)
        out[seed] = final_metrics(run)
    return out


def round_of_runs(home: Path, seeds: list[int], epochs: int, reference: dict[int, dict[str, float]]) -> dict:
    """Run ``seeds`` concurrently in ``home``; count what passed."""
    before = {r.info.run_id for r in runs_of(home)} if (home / "mlflow.db").exists() else set()
    folders_before = set((home / "outputs" / "quickstart").glob("*"))
    started = time.perf_counter()
    codes = launch(home, [[*overrides(epochs), f"seed={seed}"] for seed in seeds])
    seconds = time.perf_counter() - started
    new = [r for r in runs_of(home) if r.info.run_id not in before]
    folders = set((home / "outputs" / "quickstart").glob("*")) - folders_before
    ids_in_folders = {json.loads((f / "summary.json").read_text())["mlflow_run_id"] for f in folders
                      if (f / "summary.json").exists()}
    finished = [r for r in new if r.info.status == "FINISHED"]
    equal = [r for r in finished if same(final_metrics(r), reference[int(r.data.params["seed"])])]
    return {"exit_0": codes.count(0), "finished": len(finished), "equal_to_twin": len(equal),
            "folders": len(folders), "folder_ids_match": ids_in_folders == {r.info.run_id for r in new},
            "runs": len(seeds), "seconds": seconds}


def sweeps(home: Path, count: int, epochs: int) -> dict:
    """``count`` concurrent multiruns (``seed=0,1`` each) in ``home``."""
    started = time.perf_counter()
    codes = launch(home, [["-m", *overrides(epochs), "seed=0,1"] for _ in range(count)])
    seconds = time.perf_counter() - started
    runs = runs_of(home)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    complete = 0
    for parent in parents:
        jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        if parent.info.status == "FINISHED" and sorted(r.info.status for r in jobs) == ["FINISHED"] * 2:
            complete += 1
    folders = list((home / "multirun" / "quickstart").glob("*"))
    jobs_on_disk = len(list((home / "multirun" / "quickstart").glob("*/*/summary.json")))
    sweep_ids = {r.data.tags.get("edgeflow.sweep_id") for r in parents}
    return {"exit_0": codes.count(0), "sweeps": count, "complete": complete, "folders": len(folders),
            "jobs_on_disk": jobs_on_disk, "distinct_sweep_ids": len(sweep_ids), "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="concurrent runs per round (seeds 1..runs)")
    parser.add_argument("--sweeps", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    seeds = list(range(1, args.runs + 1))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        reference = twins(seeds, args.epochs, work)
        print(f"sequential twins: {len(reference)} runs in {time.perf_counter() - started:.0f} s")
        existing = work / "existing"
        existing.mkdir()
        assert launch(existing, [[*overrides(args.epochs), "seed=0"]]) == [0]  # the folder now has mlflow.db
        for kind in ("existing", "fresh"):
            for i in range(args.rounds):
                home = existing if kind == "existing" else work / f"fresh_{i}"
                home.mkdir(exist_ok=True)
                r = round_of_runs(home, seeds, args.epochs, reference)
                passed = (r["exit_0"] == r["finished"] == r["equal_to_twin"] == r["folders"] == r["runs"]
                          and r["folder_ids_match"])
                ok &= passed
                print(f"{kind:8s} round {i + 1}: {r['finished']}/{r['runs']} FINISHED, {r['equal_to_twin']} equal to "
                      f"their twin, {r['folders']} folders, ids match folders: {r['folder_ids_match']}, "
                      f"{r['seconds']:.0f} s  {'ok' if passed else 'FAIL'}")
        home = work / "sweeps"
        home.mkdir()
        s = sweeps(home, args.sweeps, args.epochs)
        passed = (s["exit_0"] == s["complete"] == s["folders"] == s["distinct_sweep_ids"] == s["sweeps"]
                  and s["jobs_on_disk"] == 2 * s["sweeps"])
        ok &= passed
        print(f"sweeps: {s['complete']}/{s['sweeps']} complete (parent + 2 jobs FINISHED), {s['folders']} sweep "
              f"folders, {s['jobs_on_disk']} job folders, {s['seconds']:.0f} s  {'ok' if passed else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
