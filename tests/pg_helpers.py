"""Real servers on loopback for the scale-out tests: a PostgreSQL cluster (Debian's ``postgresql``
binaries, installed by ``.ci/run`` when missing) and an MLflow tracking server backed by it.

PostgreSQL refuses to run as root: as root, the cluster's files belong to the ``postgres`` user and
its programs run through ``runuser``. Authentication is ``trust`` on 127.0.0.1 only; the cluster
lives in a temporary folder and is stopped (``immediate``) at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import BIN

USER = "edgeflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (.ci/run does)")
    return found


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    folder: Path
    port: int

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """The SQLAlchemy URL of ``database`` (psycopg2: SQLAlchemy 2.1's plain ``postgresql://`` wants psycopg 3)."""
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return self.url(name)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A fresh cluster on 127.0.0.1:<free port>, stopped on exit."""
    folder = Path(tempfile.mkdtemp(prefix="edgeflow-pg-"))
    folder.chmod(0o755)
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(_as_owner([_pg_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off"
    subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options,
                              "-w", "-t", "60", "start"]), check=True, capture_output=True)
    try:
        yield Postgres(folder, port)
    finally:
        subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1:<free port> with ``backend_uri`` as its store and ``artifacts``
    as its artifact root (served through the server); yields its URL once it answers /health."""
    port = free_port()
    log = open(artifacts.parent / f"mlflow-server-{port}.log", "w")
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri, "--artifacts-destination",
                             artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {proc.returncode}: see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer within 240 s: see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:  # the test is over: no need for a graceful stop
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
        log.close()
