"""Neural architecture search over YAML search spaces (plain PyTorch and Optuna; no Hydra or MLflow).

* :mod:`.space` - search spaces as data: ``parse(node) -> SearchSpace``; ``SearchSpace.sample(trial)``
  gives a candidate's model options (torch- and Optuna-free).
* :mod:`.objectives` - objective metrics, constraints, the MnasNet reward, Pareto front, knee,
  hypervolume (torch- and Optuna-free).
* :mod:`.strategies` - ``STRATEGIES``: one class per strategy, each building an Optuna sampler.
* :mod:`.samplers` - ``RegularizedEvolutionSampler`` and ``ReinforceSampler`` (Optuna samplers).
* :mod:`.search` - ``run_search``: exactly ``n_trials`` per study across resumes and workers.
* :mod:`.proxy` - proxy training: ``SubsetData``, ``ReportToTrial`` (pruning).
* :mod:`.selection` - choosing the architecture (best, knee, most accurate under limits), hypervolume.
* :mod:`.plots` - the Pareto-front and history charts.

Names load their submodule on first access.
"""

from edgeflow.core.lazy import lazy_exports

_LAZY: dict[str, str] = {
    **dict.fromkeys(("CHOICE_TYPES", "SearchSpace", "parse"), "space"),
    **dict.fromkeys(("COSTS", "METRICS", "Constraint", "parse_constraint", "direction", "mnas_reward",
                     "pareto_front", "knee", "hypervolume"), "objectives"),
    **dict.fromkeys(("STRATEGIES", "Strategy", "SamplerOptions"), "strategies"),
    **dict.fromkeys(("RegularizedEvolutionSampler", "ReinforceSampler"), "samplers"),
    **dict.fromkeys(("Outcome", "run_search", "counts", "file_lock"), "search"),
    **dict.fromkeys(("SubsetData", "ReportToTrial"), "proxy"),
    **dict.fromkeys(("minimised", "front_of", "choose", "normalized_hypervolume"), "selection"),
    **dict.fromkeys(("plot_front", "plot_history"), "plots"),
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
