"""The trials a sweep runs have an owner and a heartbeat, as MLflow runs do (``edgeflow.tracking.orphans``).

The sweeper process owns each trial it asks for until it tells the trial's result: the trial carries
the user attributes ``edgeflow.host``, ``edgeflow.pid``, ``edgeflow.pid_start`` and, refreshed every
``HEARTBEAT_S`` while its job runs, ``edgeflow.heartbeat``. A sweep killed outright (SIGKILL, out of
memory, a lost machine) leaves its trials RUNNING; the next sweep of the study (a rerun resumes it)
marks each trial whose owner is gone (``orphan_reason``: the process ended on this host, no heartbeat
for ``STALE_S`` from another) FAIL, with the user attribute ``edgeflow.error`` saying why, and queues
its parameters again: the resumed sweep reruns them (its finished stages are stage-cache hits), and an
orphaned trial does not count toward ``n_trials``. Trials without owner attributes are left alone.
"""

from __future__ import annotations

from typing import Any

from edgeflow.tracking.orphans import Heartbeat, orphan_reason, owner_tags

__all__ = ["own", "release", "close_orphaned", "is_orphaned"]

ERROR = "edgeflow.error"
ORPHANED = "orphaned: "
_HEARTBEAT = Heartbeat()  # one per process: it beats for every trial this sweeper has running


class _TrialAttrs:
    """What ``Heartbeat`` calls (``set_tag``), writing a trial's user attribute in an Optuna storage."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def set_tag(self, trial_id: int, key: str, value: str) -> None:
        self._storage.set_trial_user_attr(trial_id, key, value)


def own(trial: Any) -> None:
    """Mark ``trial`` (an asked ``optuna.Trial``) as this process's, and beat for it until ``release``."""
    for key, value in owner_tags().items():
        trial.set_user_attr(key, value)
    _HEARTBEAT.add(_TrialAttrs(trial.study._storage), trial._trial_id)


def release(trial: Any) -> None:
    """Stop beating for ``trial`` (its result is told)."""
    _HEARTBEAT.remove(trial._trial_id)


def is_orphaned(trial: Any) -> bool:
    """Whether ``close_orphaned`` failed this ``FrozenTrial`` (its owner died while it ran)."""
    return str(trial.user_attrs.get(ERROR, "")).startswith(ORPHANED)


def close_orphaned(study: Any) -> list[int]:
    """Mark FAIL every RUNNING trial of ``study`` whose owner is gone, queue its parameters again and
    return the trials' numbers. Two sweeps closing the same trial at once close and queue it once."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage, closed = study._storage, []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
        reason = orphan_reason(trial.user_attrs, started)
        if reason is None:
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, ERROR, ORPHANED + reason)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another sweep of the study closed it first
            continue
        study.enqueue_trial(trial.params, user_attrs={"edgeflow.retry_of": trial.number})
        closed.append(trial.number)
    return closed
