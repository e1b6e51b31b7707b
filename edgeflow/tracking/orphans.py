"""Runs whose process died (SIGKILL, a crash, a lost machine) are closed the next time edgeflow
opens their experiment, as Optuna's heartbeat fails the trials of dead workers.

Every run edgeflow creates carries its owner: tags ``edgeflow.host``, ``edgeflow.pid`` and
``edgeflow.pid_start`` (the process's start time, so a reused pid is not mistaken for the owner).
While a process has runs open, a daemon thread refreshes their tag ``edgeflow.heartbeat`` (Unix
seconds) every ``HEARTBEAT_S``. ``close_orphans`` marks KILLED, with tag ``edgeflow.error`` saying
why, every RUNNING run of an experiment whose owner is gone: on this host, its process no longer
exists; on another host, its heartbeat is older than ``STALE_S``. Runs without an owner tag (made
by other tools) are left alone. The Optuna sweeper (``hydra_plugins.edgeflow_optuna_sweeper``) gives
its trials the same owner and heartbeat (as user attributes) and asks ``orphan_reason`` about them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

__all__ = ["HEARTBEAT_S", "STALE_S", "owner_tags", "orphan_reason", "close_orphans", "Heartbeat"]

HEARTBEAT_S = 60.0
#: a run on another host whose heartbeat is this old is orphaned (ten missed beats)
STALE_S = 10 * HEARTBEAT_S
HOST, PID, PID_START, BEAT = "edgeflow.host", "edgeflow.pid", "edgeflow.pid_start", "edgeflow.heartbeat"


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tags() -> dict[str, str]:
    """The tags naming this process as a run's owner."""
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), PID_START: _start_time(pid)}


def _alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` (started at ``started``, when known) still exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    now = _start_time(pid)
    return not (started and now and now != started)


def orphan_reason(tags: Mapping[str, Any], started_s: float) -> str | None:
    """Why a RUNNING run (or trial) with these owner tags, started at Unix time ``started_s``, is
    orphaned, or None when its owner may be alive or it has no owner tags."""
    host, pid = tags.get(HOST), str(tags.get(PID, ""))
    if host is None or not pid.isdigit():
        return None
    if host == socket.gethostname():
        if _alive(int(pid), tags.get(PID_START, "")):
            return None
        return f"its process {pid} on {host} ended without closing it (killed or crashed)"
    beat = float(tags.get(BEAT, started_s))
    if time.time() - beat <= STALE_S:
        return None
    return f"no heartbeat from process {pid} on {host} for {time.time() - beat:.0f} s"


def close_orphans(client: Any, experiment_id: str) -> list[str]:
    """Mark KILLED every orphaned RUNNING run of ``experiment_id`` (through the ``MlflowClient``
    ``client``), tagging ``edgeflow.error``; returns their ids."""
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    closed = []
    for run in runs:
        reason = orphan_reason(run.data.tags, (run.info.start_time or 0) / 1000)
        if reason is None:
            continue
        client.set_tag(run.info.run_id, "edgeflow.error", f"orphaned: {reason}; marked KILLED by process "
                                                          f"{os.getpid()} on {socket.gethostname()}")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


class Heartbeat:
    """The runs this process has open, and the daemon thread that beats for them every ``HEARTBEAT_S``
    (``client.set_tag(run_id, "edgeflow.heartbeat", <Unix seconds>)``: any object with that method)."""

    def __init__(self) -> None:
        self._runs: dict[str, Any] = {}  # run id -> client
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0  # the process that started the thread (a forked child starts its own)

    def add(self, client: Any, run_id: str) -> None:
        """Beat for ``run_id`` from now on (starting the thread on first use)."""
        with self._lock:
            if self._pid != os.getpid():
                self._runs, self._pid, self._thread = {}, os.getpid(), None
            self._runs[run_id] = client
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="edgeflow-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                runs = list(self._runs.items())
            for run_id, client in runs:
                try:
                    client.set_tag(run_id, BEAT, f"{time.time():.0f}")
                except Exception:  # noqa: BLE001, S112 - a missed beat is retried on the next one
                    continue
