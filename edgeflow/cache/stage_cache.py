"""The stage cache as the pipeline uses it: look a stage up, reuse or compute it, store it.

``StageCache.run(name, cfg, state, ctx, compute)`` returns the stage's ``StageResult`` and the id of
the MLflow run that computed it when it came from the cache (None when computed now). A hit copies
the stage's files into this run's stage folder, loads its ``State`` (``weights_only``), points its
artifacts at the copies, and replays into this run's MLflow run what the stage logged per epoch,
so the run records the same metrics as if it had computed the stage. Nested runs a stage opened
(``ctx.child``) are not replayed. In a local MLflow artifact store, the run's artifacts that equal the
computing run's are hard links to its files (``MlflowRun.reuse_artifacts_of``): a run whose stages
all hit writes only what is its own (``config.yaml``, ``summary.json``, ``state/state.json``, ...).

Failures never stop a run: an unwritable folder gives one warning and the run goes on uncached; an
entry that cannot be read is removed and recomputed (one warning); a result that cannot be stored
(a model without a blueprint, a full disk) is logged and the run goes on.

``begin``/``finish`` keep a record of the run while it runs: a run started with the same config as
an unfinished one (killed, or failed) *resumes* it — its finished stages are cache hits — and its
MLflow run gets the tag ``edgeflow.resumed_from`` naming the run it continues.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeflow.cache.keys import (base_key, canonical, code_hash, digest, full_key, loaded_code, read_values,
                                 state_fingerprint)
from edgeflow.cache.schema import CacheConfig
from edgeflow.cache.store import CacheStore

__all__ = ["StageCache", "cache_dir", "CACHED_TAG", "RESUMED_TAG"]

log = logging.getLogger("edgeflow")
CACHED_TAG = "edgeflow.cached."  # + stage name: the run that computed the stage
RESUMED_TAG = "edgeflow.resumed_from"


def cache_dir(cfg: CacheConfig) -> Path:
    """``cfg.dir``, or ``<home>/cache`` (beside the default ``mlflow.db``)."""
    from edgeflow.core.home import home

    return Path(cfg.dir).expanduser().resolve() if cfg.dir else home() / "cache"


class _Recording:
    """A tracker that forwards everything to ``inner`` and remembers the metrics logged through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.logged: list[list[Any]] = []

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.logged.append([{k: float(v) for k, v in metrics.items()}, step])
        self.inner.log_metrics(metrics, step)

    def log_metric_rows(self, rows: list[tuple[Mapping[str, float], int | None]]) -> None:
        self.logged.extend([{k: float(v) for k, v in values.items()}, step] for values, step in rows)
        self.inner.log_metric_rows(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class StageCache:
    """The cache of one run (see the module doc). ``store`` None: disabled, every stage computed."""

    def __init__(self, store: CacheStore | None, run_dir: Path, groups: Mapping[str, Any], seed: int,
                 max_bytes: int, tracker: Any) -> None:
        self.store = store
        self.run_dir = Path(run_dir)
        self.groups = dict(groups)
        self.seed = seed
        self.max_bytes = max_bytes
        self.tracker = tracker
        self.run_key: str | None = None

    @classmethod
    def open(cls, cfg: CacheConfig, run_dir: Path, groups: Mapping[str, Any], seed: int, tracker: Any) -> StageCache:
        """The run's cache; disabled when ``cfg.enabled`` is false or the folder is not writable
        (one warning)."""
        store = None
        if cfg.enabled:
            store = CacheStore(cache_dir(cfg))
            try:
                store.check_writable()
            except OSError as err:
                log.warning("cache: %s is not writable (%s); running without the cache", store.root,
                            err.strerror or err)
                store = None
        return cls(store, run_dir, groups, seed, int(cfg.max_size_mb * 2**20), tracker)

    # ------------------------------------------------------------------ resume
    def begin(self, typed: Any) -> str | None:
        """Record that a run with config ``typed`` (a ``RunConfig``; its tracking and cache
        settings and the progress bar aside) started; returns the MLflow run id of an unfinished
        run with the same config, which this run resumes (tagged ``edgeflow.resumed_from``), or None."""
        if self.store is None:
            return None
        identity = {k: v for k, v in canonical(typed).items() if k not in ("tracking", "cache")}
        identity["trainer"] = read_values(["trainer"], {"trainer": typed.trainer})["trainer"]
        self.run_key = digest(identity)
        previous = None
        try:
            record = self.store.run_record(self.run_key)
            if record is not None:
                previous = str(record.get("run_id") or record.get("run_dir") or "")
                log.info("resuming run %s (%s): stages it finished come from the cache",
                         record.get("run_id") or "-", record.get("run_dir"))
                if record.get("run_id"):
                    self.tracker.set_tag(RESUMED_TAG, str(record["run_id"]))
            self.store.write_run_record(self.run_key, {"run_id": self.tracker.run_id, "run_dir": str(self.run_dir),
                                                       "pid": os.getpid(), "started": time.time()})
        except OSError as err:
            log.warning("cache: cannot record the run for resume (%s)", err)
        return previous

    def finish(self) -> None:
        """The run ended successfully: forget its resume record."""
        if self.store is not None and self.run_key is not None:
            try:
                self.store.drop_run_record(self.run_key)
            except OSError:
                pass

    # ------------------------------------------------------------------ stages
    def run(self, name: str, cfg: Any, state: Any, ctx: Any, compute: Callable[[], Any]) -> tuple[Any, str | None]:
        """Stage ``name`` (config ``cfg``) on ``state`` in context ``ctx``: from the cache when an
        entry matches, else ``compute()`` (then stored). Returns ``(result, computed_by)``."""
        if self.store is None:
            return compute(), None
        base = base_key(name, cfg, self.seed, state_fingerprint(state, self.run_dir))
        with ExitStack() as held:
            try:  # jobs computing the same stage wait for the first one, then hit
                held.enter_context(self.store.lock(base))
            except OSError as err:  # e.g. a folder that became read-only: go on unlocked
                log.warning("cache: cannot lock %s (%s)", base, err)
            hit = self._lookup(base, name, ctx)
            if hit is not None:
                return hit
            recording = _Recording(ctx.tracker)
            ctx.tracker = recording
            try:
                result = compute()
            finally:
                ctx.tracker = recording.inner
            self._store(base, name, cfg, ctx, result, recording.logged)
            return result, None

    def _lookup(self, base: str, name: str, ctx: Any) -> tuple[Any, str] | None:
        for reads, code in self.store.variants(base):
            key = full_key(base, read_values(reads, self.groups), code_hash(code))
            try:
                entry = self.store.read(key)
                if entry is None:
                    continue
                result = self._restore(entry.path, entry.meta, ctx)
            except Exception as err:  # noqa: BLE001 - any unreadable entry is recomputed, never a crash
                log.warning("cache: entry %s of stage %s is unreadable (%s: %s); recomputing it", key, name,
                            type(err).__name__, str(err).splitlines()[0] if str(err) else "")
                self.store.remove(key)
                continue
            ctx.tracker.log_metric_rows([(values, step) for values, step in entry.meta.get("logged", [])])
            computed_by = str(entry.meta.get("run_id") or "")
            self.tracker.set_tag(f"{CACHED_TAG}{name}", computed_by or "-")
            self.tracker.reuse_artifacts_of(computed_by)  # its equal files: hard links, not copies
            return result, computed_by
        return None

    def _restore(self, path: Path, meta: dict[str, Any], ctx: Any) -> Any:
        """The ``StageResult`` stored in entry ``path``: files copied into ``ctx.out_dir``, artifact
        paths (of this stage and earlier ones) moved from the computing run's folder to this run's."""
        from edgeflow.state import Artifact, StageResult, State

        state = State.load(path / "state")
        files = path / "files"
        if files.is_dir():
            shutil.copytree(files, ctx.out_dir, dirs_exist_ok=True)
        old_root = Path(meta["run_dir"])
        moved = {}
        for key, art in state.artifacts.items():
            p = Path(art.path)
            moved[key] = Artifact(self.run_dir / p.relative_to(old_root), art.model, art.version) \
                if p.is_relative_to(old_root) else art
        state = replace(state, artifacts=moved)
        artifacts = {key: ctx.out_dir / rel for key, rel in meta["artifacts"].items()}
        missing = [str(p) for p in artifacts.values() if not p.is_file()]
        if missing:
            raise ValueError(f"files missing: {', '.join(missing)}")
        metrics = {str(k): float(v) for k, v in meta["metrics"].items()}
        return StageResult(state=state, metrics=metrics, artifacts=artifacts)

    def _store(self, base: str, name: str, cfg: Any, ctx: Any, result: Any, logged: list) -> None:
        reads, code = sorted(ctx.reads), loaded_code()
        key = full_key(base, read_values(reads, self.groups), code_hash(code))
        artifacts = {}
        for art_key, file in result.artifacts.items():
            file = Path(file).resolve()
            if not file.is_relative_to(ctx.out_dir.resolve()):
                log.info("cache: stage %s not stored: its file %s is outside its folder", name, file)
                return
            artifacts[art_key] = file.relative_to(ctx.out_dir.resolve()).as_posix()
        folder = None
        try:
            folder = self.store.new_folder(key)
            result.state.save(folder / "state")
            shutil.copytree(ctx.out_dir, folder / "files")
            meta = {"key": key, "base": base, "stage": name, "kind": getattr(cfg, "kind", ""), "reads": reads,
                    "metrics": {k: float(v) for k, v in result.metrics.items()}, "logged": logged,
                    "artifacts": artifacts, "run_id": self.tracker.run_id, "run_dir": str(self.run_dir)}
            self.store.commit(folder, meta)
            self.store.add_variant(base, digest(reads, code), reads, code)
            self.store.evict(self.max_bytes)
        except (OSError, ValueError) as err:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            log.warning("cache: stage %s not stored (%s: %s)", name, type(err).__name__, err)
