"""The cache folder on disk: entries written atomically, listed, evicted and cleared. torch-free.

Layout of ``<dir>``::

    entries/<key>/meta.json   what the stage reported (metrics, logged series, artifacts, reads, run id)
    entries/<key>/state/      the State it returned (``State.save``: weights without pickled code)
    entries/<key>/files/      the stage's folder as it left it
    vary/<base>/<name>.json   which config groups and source files a stage with this base key used (``keys``)
    locks/<base>.lock         held while a stage with this base key is looked up or computed
    runs/<run>.json           a run that started and has not finished (resume)
    tmp/                      entries being written

An entry is written into ``tmp/`` and renamed into ``entries/`` once complete, with ``meta.json``
written last (as an Optuna storage writes a trial's state last): a reader never sees half an entry,
and a job killed while storing leaves only a folder in ``tmp/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["META", "Entry", "CacheStore"]

META = "meta.json"


@dataclass(frozen=True)
class Entry:
    """One stored stage result: its folder and ``meta.json`` (as a dict)."""

    path: Path
    meta: dict[str, Any]

    @property
    def key(self) -> str:
        return self.path.name


def folder_bytes(path: Path) -> int:
    """The size of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


class CacheStore:
    """The folder ``root`` (see the module doc). Methods raise ``OSError`` on file-system failures."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ set-up
    def check_writable(self) -> None:
        """Create the folder and write a probe file in it; raises ``OSError`` if that fails."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        probe = tmp / f".probe.{os.getpid()}.{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive ``flock`` on ``locks/<name>.lock`` for the duration (released by the OS if the
        process dies, so a killed job never blocks the others)."""
        import fcntl

        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ entries
    def entry_path(self, key: str) -> Path:
        return self.root / "entries" / key

    def read(self, key: str) -> Entry | None:
        """The complete entry ``key``, or None if there is none. Raises ``ValueError``/``OSError``
        for an entry whose ``meta.json`` is unreadable. A hit refreshes its time (least recently used
        entries go first)."""
        path = self.entry_path(key)
        meta_path = path / META
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or meta.get("key") != key:
            raise ValueError(f"{meta_path}: not an entry of key {key}")
        os.utime(meta_path)
        return Entry(path, meta)

    def new_folder(self, key: str) -> Path:
        """A fresh folder in ``tmp/`` to build entry ``key`` in."""
        path = self.root / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def commit(self, folder: Path, meta: dict[str, Any]) -> Path:
        """Write ``meta.json`` into ``folder`` (built by ``new_folder``) and move it into ``entries/``.
        If another job stored the same key meanwhile, its entry is kept and ``folder`` removed."""
        meta = {**meta, "bytes": folder_bytes(folder), "created": time.time()}
        (folder / META).write_text(json.dumps(meta, indent=1))
        target = self.entry_path(meta["key"])
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.rename(target)
        except OSError:  # already stored by another job (a non-empty target cannot be replaced)
            shutil.rmtree(folder, ignore_errors=True)
        return target

    def remove(self, key: str) -> None:
        """Remove entry ``key``: renamed away first, so readers see it whole or not at all."""
        path = self.entry_path(key)
        if not path.exists():
            return
        gone = self.root / "tmp" / f"removed.{key}.{uuid.uuid4().hex[:8]}"
        gone.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.rename(gone)
        except OSError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def entries(self) -> list[Entry]:
        """Every complete entry, least recently used first; unreadable ones are listed with ``{}``."""
        found = []
        for path in (self.root / "entries").glob("*"):
            try:
                meta = json.loads((path / META).read_text())
                used = (path / META).stat().st_mtime
            except (OSError, ValueError):
                meta, used = {}, 0.0
            found.append((used, Entry(path, meta if isinstance(meta, dict) else {})))
        return [entry for _, entry in sorted(found, key=lambda pair: pair[0])]

    def size(self) -> int:
        """Bytes held by the entries."""
        return sum(int(e.meta.get("bytes", 0)) or folder_bytes(e.path) for e in self.entries())

    def evict(self, max_bytes: int) -> list[str]:
        """Remove the least recently used entries until the entries take at most ``max_bytes``;
        returns the removed keys."""
        entries = self.entries()
        total = sum(int(e.meta.get("bytes", 0)) or folder_bytes(e.path) for e in entries)
        removed = []
        for entry in entries:
            if total <= max_bytes:
                break
            total -= int(entry.meta.get("bytes", 0)) or folder_bytes(entry.path)
            self.remove(entry.key)
            removed.append(entry.key)
        return removed

    def clear(self) -> int:
        """Remove every entry and everything else in the folder; returns the number of entries removed."""
        count = len(self.entries())
        for name in ("entries", "vary", "runs", "tmp"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        return count

    # ------------------------------------------------------------------ vary records and runs
    def variants(self, base: str) -> list[tuple[list[str], list[str]]]:
        """What stages with base key ``base`` were seen to depend on beyond it: pairs of (config
        groups read, source files loaded)."""
        out = []
        for path in sorted((self.root / "vary" / base).glob("*.json")):
            try:
                data = json.loads(path.read_text())
                out.append(([str(r) for r in data["reads"]], [str(f) for f in data["code"]]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def add_variant(self, base: str, name: str, reads: list[str], code: list[str]) -> None:
        write_json(self.root / "vary" / base / f"{name}.json", {"reads": reads, "code": code})

    def run_record(self, run_key: str) -> dict[str, Any] | None:
        """The record of an unfinished run with config ``run_key``, if any."""
        try:
            data = json.loads((self.root / "runs" / f"{run_key}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_run_record(self, run_key: str, record: dict[str, Any]) -> None:
        write_json(self.root / "runs" / f"{run_key}.json", record)

    def drop_run_record(self, run_key: str) -> None:
        (self.root / "runs" / f"{run_key}.json").unlink(missing_ok=True)
