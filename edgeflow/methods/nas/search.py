"""The search loop over an Optuna study: exactly ``n_trials`` trials in the study, whoever runs them.

``run_search(study, n_trials, evaluate, lock=..., heartbeat_s=...)`` asks the study for a trial,
lets ``evaluate(trial)`` judge it and tells the study the ``Outcome``, until the study holds
``n_trials`` trials that count. Counting covers every worker on the storage, so

- **resume**: rerunning a killed search runs only the missing trials (finished ones are kept);
- **workers**: several processes on one storage share the work; with a ``lock`` held around
  counting and asking (a file lock for a local SQLite or journal file), they create exactly
  ``n_trials`` in all; without one (a remote database) at most ``workers − 1`` more.

A trial counts unless it was abandoned: its worker died (the process on this host is gone, or on a
storage with heartbeats its heartbeat is older than the grace period; Optuna's
``fail_stale_trials``) or it was interrupted (``KeyboardInterrupt``). Abandoned trials are FAIL
without a ``reason`` attribute and are run again. A trial whose ``evaluate`` raises is FAIL with
its ``reason`` (the error's first line) and counts; the search goes on.

Outcomes: ``complete`` (values told), ``pruned`` (stopped by the pruner) and ``infeasible``
(rejected by a constraint before training) are both Optuna's PRUNED, told apart by the ``outcome``
user attribute.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator

import optuna
from optuna.trial import Trial, TrialState

__all__ = ["Outcome", "run_search", "counts", "file_lock", "WORKER", "REASON", "OUTCOME"]

WORKER = "worker"      # user attribute: "<host>:<pid>" of the process running the trial
REASON = "reason"      # user attribute of a failed, pruned or infeasible trial
OUTCOME = "outcome"    # user attribute: complete | pruned | infeasible | failed
_HOST = socket.gethostname()


@dataclass
class Outcome:
    """What ``evaluate`` found: ``state`` complete | pruned | infeasible, the objective ``values``
    (complete only), and user attributes to store (metrics, reward, reason)."""

    state: str
    values: list[float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _counts(t: optuna.trial.FrozenTrial) -> bool:
    """Whether ``t`` takes one of the search's ``n_trials`` (abandoned trials do not)."""
    if t.state == TrialState.FAIL:
        return REASON in t.user_attrs
    return True


def _dead(t: optuna.trial.FrozenTrial) -> bool:
    """Whether running trial ``t`` belongs to a process of this host that no longer exists."""
    host, _, pid = str(t.user_attrs.get(WORKER, "")).rpartition(":")
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _fail_abandoned(study: optuna.Study) -> None:
    """FAIL (without reason) the running trials whose worker died."""
    with warnings.catch_warnings():  # experimental since Optuna 2.9, and meant for optimize(): this loop records heartbeats itself
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead(t):
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials of the study per outcome (``complete``, ``pruned``, ``infeasible``, ``failed``,
    ``running``, ``abandoned``)."""
    out = dict.fromkeys(("complete", "pruned", "infeasible", "failed", "running", "abandoned"), 0)
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            out["running"] += 1
        elif not _counts(t):
            out["abandoned"] += 1
        else:
            out[t.user_attrs.get(OUTCOME, "complete" if t.state == TrialState.COMPLETE else "failed")] += 1
    return out


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds while the trial runs (RDB storages)."""

    def __init__(self, storage: Any, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self.stop.wait(self.interval):
                return

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def _heartbeat(study: optuna.Study, trial: Trial) -> ContextManager:
    storage = study._storage
    interval = getattr(storage, "heartbeat_interval", None)
    if interval and hasattr(storage, "record_heartbeat"):
        return _Heartbeat(storage, trial._trial_id, interval)
    return contextlib.nullcontext()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing): the lock of local storages."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_search(study: optuna.Study, n_trials: int, evaluate: Callable[[Trial], Outcome],
               lock: Callable[[], ContextManager] = contextlib.nullcontext) -> int:
    """Run trials until ``study`` holds ``n_trials`` that count (see the module docstring);
    returns how many this call ran."""
    ran = 0
    while True:
        with lock():
            _fail_abandoned(study)
            if sum(_counts(t) for t in study.get_trials(deepcopy=False)) >= n_trials:
                return ran
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize": _Heartbeat records it
                trial = study.ask()
            trial.set_user_attr(WORKER, f"{_HOST}:{os.getpid()}")
        ran += 1
        try:
            with _heartbeat(study, trial):
                outcome = evaluate(trial)
        except Exception as err:  # a candidate that fails to build or train: a failed trial, not a crash
            trial.set_user_attr(REASON, f"{type(err).__name__}: {err}".splitlines()[0][:500])
            trial.set_user_attr(OUTCOME, "failed")
            study.tell(trial, state=TrialState.FAIL)
            continue
        except BaseException:  # interrupted: abandoned, run again by the next search
            study.tell(trial, state=TrialState.FAIL)
            raise
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(OUTCOME, outcome.state)
        if outcome.state == "complete":
            study.tell(trial, outcome.values)
        else:
            study.tell(trial, state=TrialState.PRUNED)
