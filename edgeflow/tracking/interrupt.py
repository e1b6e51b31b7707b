"""SIGINT and SIGTERM as an exception that ends the MLflow run KILLED, whatever Lightning does.

Lightning turns a ``KeyboardInterrupt`` during ``fit``/``test`` into ``sys.exit(1)`` and a SIGTERM
into a "graceful" stop at the next batch (``SIGTERMException``), so neither reaches the pipeline as
an interruption. Inside ``raising_signals()`` both signals raise ``Interrupted`` instead: a
``BaseException`` that Lightning tears down for and re-raises unchanged, that the pipeline tags with
the stage it stopped (``during``) and that ``MlflowRun.finish`` records as KILLED. The first signal
raises; later ones only wait for the cleanup to end. ``exit_code`` is the shell's 128 + signal
number (130 for SIGINT, 143 for SIGTERM). ``received()`` tells code that runs at exit (a sweep's
parent run) that the process was interrupted. MLflow-free.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupted", "raising_signals", "received"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the signals this process received inside raising_signals (process-wide, as signals are)


class Interrupted(BaseException):
    """The run was stopped by signal ``signum`` while stage ``stage`` (None: between stages) ran."""

    def __init__(self, signum: int, stage: str | None = None) -> None:
        super().__init__(signum, stage)
        self.signum = signum
        self.stage = stage

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def during(self, stage: str) -> Interrupted:
        """The same interruption, naming the stage that was running (the innermost one wins)."""
        return self if self.stage is not None else Interrupted(self.signum, stage)

    def __str__(self) -> str:
        where = f" during stage {self.stage!r}" if self.stage else ""
        return f"interrupted by {self.signal_name}{where}"


def received() -> int | None:
    """The first signal this process received inside ``raising_signals``, or None."""
    return _received[0] if _received else None


def _handler(signum: int, frame: FrameType | None) -> None:
    first = not _received
    _received.append(signum)
    if first:
        raise Interrupted(signum)


@contextmanager
def raising_signals() -> Iterator[None]:
    """Inside: SIGINT and SIGTERM raise ``Interrupted`` (once per outermost block). The previous
    handlers come back on exit; ``received()`` keeps its answer until the next block. Outside the main thread (where Python cannot set handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    if all(handler is _handler for handler in previous.values()):  # nested: the outer block handles it
        yield
        return
    _received.clear()
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
