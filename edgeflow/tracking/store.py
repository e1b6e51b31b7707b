"""A local SQLite MLflow store that survives parallel first use.

MLflow creates and migrates a SQLite store the first time a process opens it, with no lock: runs
that start together in a folder without ``mlflow.db`` race ("table ... already exists"), lose
runs, and can leave the store half-migrated, which every later run then fails on.
``prepare_store`` opens the store once per process under an exclusive file lock
(``<db>.lock`` beside it): the first process creates and migrates it and switches it to WAL mode
(readers never block the writer; the setting stays with the file), the others wait and then find it
ready. A store that is not at MLflow's schema head is never migrated implicitly: it is reported in
one line with the fix (``StoreError``). ``Retrying`` wraps an ``MlflowClient`` so that a call that
meets "database is locked" (beyond MLflow's own 20 s busy timeout) is retried with backoff.
Other URIs (an MLflow server, PostgreSQL) are left to their own server. WAL needs every process
on one machine: keep a shared store on a network file system behind an MLflow server instead.
"""

from __future__ import annotations

import fcntl
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from edgeflow.core.errors import ConfigError

__all__ = ["StoreError", "Retrying", "prepare_store", "sqlite_path", "store_lock"]

log = logging.getLogger("edgeflow")
SQLITE = "sqlite:///"
#: how long a "database is locked" call is retried in all, in seconds
RETRY_S = 120.0
#: MLflow logs a traceback for a locked database before raising; the retry below handles it
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


class StoreError(ConfigError):
    """A local MLflow store edgeflow cannot use as it is: one line naming the file and the fix."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        super().__init__("tracking.uri", f"the MLflow store {path} {problem}; {fix}")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` URI (None for any other store)."""
    if not uri.startswith(SQLITE):
        return None
    return Path(uri[len(SQLITE):].split("?", 1)[0])


@contextmanager
def store_lock(db: Path) -> Iterator[None]:
    """Hold the exclusive lock of store ``db`` (``flock`` on ``<db>.lock``), waiting for it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _schema(db: Path) -> tuple[set[str], str | None]:
    """The tables of ``db`` and its alembic revision (None when it has no ``alembic_version`` row)."""
    with sqlite3.connect(db, timeout=60) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "alembic_version" in tables:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            version = row[0] if row else None
    con.close()
    return tables, version


def _head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _check(db: Path, tables: set[str], version: str | None, head: str) -> None:
    """Raise ``StoreError`` for a store that has MLflow tables but is not exactly at ``head``."""
    moved = f"{db}.broken"
    if version is None:
        raise StoreError(db, f"is half-migrated ({len(tables)} table(s), no schema version: its creation was "
                             "interrupted or raced)", f"move it away (mv {db} {moved}) and rerun")
    if version != head:
        raise StoreError(db, f"has schema version {version}, not this MLflow's {head} (an older MLflow, or an "
                             "interrupted migration)",
                         f"back it up, then run: mlflow db upgrade {SQLITE}{db}; if that fails, move it away "
                         f"(mv {db} {moved}) and rerun")


@cache
def prepare_store(uri: str) -> None:
    """Make the store at ``uri`` ready for this process (once per process): for ``sqlite:///``,
    create and migrate it under ``store_lock`` if it is new, switch it to WAL mode, and raise
    ``StoreError`` if it is half-migrated or at another schema version. Other URIs: nothing."""
    db = sqlite_path(uri)
    if db is None:
        return
    head = _head()
    with store_lock(db):
        tables, version = _schema(db) if db.exists() else (set(), None)
        if tables - {"alembic_version"}:
            _check(db, tables, version, head)
        else:
            from mlflow.tracking import MlflowClient

            try:
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates and migrates
            except Exception as err:  # noqa: BLE001 - reported as one line with the fix
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise StoreError(db, f"could not be created ({first[:300]})",
                                 f"move it away (mv {db} {db}.broken) and rerun") from None
            _check(db, *_schema(db), head)
        with sqlite3.connect(db, timeout=60) as con:
            con.execute("PRAGMA journal_mode=WAL")
        con.close()


def _locked(err: BaseException) -> bool:
    return "database is locked" in str(err)


class Retrying:
    """An ``MlflowClient`` whose calls are retried (jittered backoff, ``RETRY_S`` in all) when the
    database is locked; every other error, and every attribute that is no method, passes through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: _retry(attr, *args, **kwargs)


def _retry(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    deadline, delay = time.monotonic() + RETRY_S, 0.05
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if not _locked(err) or time.monotonic() > deadline:
                raise
            log.debug("MLflow store locked; retrying %s in %.2fs", getattr(call, "__name__", call), delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
