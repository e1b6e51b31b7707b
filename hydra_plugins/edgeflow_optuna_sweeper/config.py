"""Options of ``hydra/sweeper=optuna`` (registered in Hydra's ConfigStore on import).

No ``from __future__ import annotations`` here: Hydra's plugin scan loads this module outside
``sys.modules``, where dataclasses cannot resolve string annotations."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore

SAMPLERS = ("tpe", "random", "nsga2")


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper.*``.

    - ``n_trials``: trials the study should hold in all; a rerun adds only the missing ones (resume);
    - ``n_jobs``: trials asked for at once and handed to the launcher together (``hydra/launcher=joblib``
      runs them in parallel);
    - ``sampler``: ``tpe`` (multi-objective too), ``random`` or ``nsga2``; ``seed`` seeds it;
    - ``storage``: an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``); null =
      ``sqlite:///<home>/optuna.db``;
    - ``study_name``: null = ``<recipe>-<hash of the search space and fixed overrides>``, so the same
      command resumes its study and another command starts its own;
    - ``params``: search space as in Hydra's sweep syntax (also accepted on the command line):
      ``choice(2,4,8)``, ``2,4,8``, ``range(1,5)``, ``interval(0.1,0.5)``, ``tag(log, interval(1e-4,1e-1))``;
    - ``extra_metrics``: metric names (``<metric>``) of your own stages, accepted in ``optimize``.

    The objectives are the app's ``optimize`` (``[evaluate/test_acc:max, profile/latency_ms:min]``);
    without it, the last stage's ``test_acc``, maximised.
    """

    _target_: str = "hydra_plugins.edgeflow_optuna_sweeper.sweeper.OptunaSweeper"
    n_trials: int = 20
    n_jobs: int = 1
    sampler: str = "tpe"
    seed: Optional[int] = 0
    storage: Optional[str] = None
    study_name: Optional[str] = None
    params: Dict[str, str] = field(default_factory=dict)
    extra_metrics: List[str] = field(default_factory=list)


def register() -> None:
    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="edgeflow")


register()
