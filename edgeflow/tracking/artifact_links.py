"""Artifacts a run shares with earlier runs are hard-linked, not copied, in a local artifact store.

A stage-cache hit (``edgeflow.cache``) gives a run the very files the run that computed the stage
logged, and a run whose stages all hit logs that run's files again. When both runs keep their
artifacts in local folders (the default SQLite store's ``mlartifacts/``; any ``file:`` location on
one file system), ``ArtifactLinker.link`` makes such an artifact a hard link to the earlier run's
file at the same artifact path when their bytes are equal: nothing is written, and the run still
holds every artifact itself (``runs:/<id>/...``, the UI and downloads see ordinary files; deleting
the earlier run leaves them in place). Anywhere else (an MLflow server's artifact proxy, S3, ...)
MLflow has no call that copies or links, so the file is uploaded as before.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["ArtifactLinker", "local_root"]


def local_root(artifact_uri: str) -> Path | None:
    """The folder of a run's ``artifact_uri`` when it is local (``file:`` or a plain path), else None."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


class ArtifactLinker:
    """For run ``run_id`` (reached through ``client``): links files equal to its sources' (``add_source``)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.sources: list[str] = []
        self._roots: dict[str, Path | None] = {}

    def add_source(self, run_id: str) -> None:
        """Run ``run_id`` (of the same store) may hold files this run logs: link those."""
        if run_id and run_id != self.run_id and run_id not in self.sources:
            self.sources.append(run_id)

    def link(self, file: Path, artifact_path: str) -> bool:
        """Make ``artifact_path`` of this run a hard link to the same path of a source run when that
        file has the bytes of ``file``; False (nothing done) when no source has it, either store is
        not local, or the file system refuses (another device): the caller then uploads ``file``."""
        mine = self._root(self.run_id) if self.sources else None
        if mine is None:
            return False
        for source in self.sources:
            root = self._root(source)
            theirs = root / artifact_path if root is not None else None
            if theirs is None or not theirs.is_file() or not filecmp.cmp(theirs, file, shallow=False):
                continue
            target = mine / artifact_path
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(theirs, target)
            except OSError:  # another file system, a target already there, a read-only store
                return False
            return True
        return False

    def _root(self, run_id: str) -> Path | None:
        if run_id not in self._roots:
            try:
                self._roots[run_id] = local_root(self.client.get_run(run_id).info.artifact_uri)
            except Exception:  # noqa: BLE001 - a run of another store, or deleted: upload instead
                self._roots[run_id] = None
        return self._roots[run_id]
