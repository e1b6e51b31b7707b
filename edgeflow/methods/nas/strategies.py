"""Search strategies: one class each, named in ``STRATEGIES``; each builds an Optuna sampler.

This module imports Optuna only inside ``sampler`` (config validation reads the class attributes).
A new strategy is one more ``Strategy`` subclass listed in ``STRATEGIES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

from edgeflow.methods.nas.space import Blocks, SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

__all__ = ["STRATEGIES", "Strategy", "SamplerOptions"]


@dataclass(frozen=True)
class SamplerOptions:
    """What a strategy may need to build its sampler."""

    space: SearchSpace
    seed: int
    fitness: Callable[[FrozenTrial], float | None]  # the trial's scalar reward (evolution, rl)
    population: int = 10        # nsga2 generation size; evolution population
    tournament: int = 3         # evolution: members drawn per tournament
    startup_trials: int = 5     # tpe, gp, cmaes: random trials before the model guides the search
    controller_lr: float = 0.2  # rl: policy step size (advantages are scaled to unit size)
    baseline_decay: float = 0.8  # rl: moving-average baseline decay


class Strategy:
    """A search strategy. ``multi_objective``: it can search for a Pareto front; ``uses_reward``: it
    ranks candidates by the scalar reward (so several objectives need a reward target)."""

    name: ClassVar[str]
    multi_objective: ClassVar[bool] = True
    uses_reward: ClassVar[bool] = False

    def problem(self, space: SearchSpace) -> str | None:
        """Why this strategy cannot search ``space`` (None when it can)."""
        return None

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        raise NotImplementedError


class Random(Strategy):
    """Uniform random search: the baseline every other strategy must beat."""

    name = "random"

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import RandomSampler

        return RandomSampler(seed=o.seed)


class TPE(Strategy):
    """Tree-structured Parzen estimator, multivariate and grouped (handles the conditional blocks)."""

    name = "tpe"

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import TPESampler

        return TPESampler(seed=o.seed, multivariate=True, group=True, n_startup_trials=o.startup_trials)


class NSGA2(Strategy):
    """NSGA-II: non-dominated sorting and crowding distance, generations of ``population``."""

    name = "nsga2"

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import NSGAIISampler

        return NSGAIISampler(seed=o.seed, population_size=o.population)


class GP(Strategy):
    """Gaussian-process Bayesian optimisation (Optuna's GPSampler; torch)."""

    name = "gp"

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import GPSampler

        return GPSampler(seed=o.seed, n_startup_trials=o.startup_trials)


class CMAES(Strategy):
    """CMA-ES over int and float ranges (single objective)."""

    name = "cmaes"
    multi_objective = False

    def problem(self, space: SearchSpace) -> str | None:
        if not space.numeric:
            return "cmaes searches int and float ranges only; this space has categorical choices (use tpe or gp)"
        if any(isinstance(c, Blocks) for c in space.choices.values()):
            return "cmaes needs a fixed set of parameters; this space has per-block lists (use tpe or evolution)"
        return None

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import CmaEsSampler

        return CmaEsSampler(seed=o.seed, n_startup_trials=o.startup_trials, warn_independent_sampling=False)


class Grid(Strategy):
    """Exhaustive grid over categorical and int choices (each grid point once, in random order)."""

    name = "grid"

    def problem(self, space: SearchSpace) -> str | None:
        why = space.grid_problem()
        return f"grid cannot enumerate this space: {why}" if why else None

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from optuna.samplers import GridSampler

        return GridSampler(o.space.grid(), seed=o.seed)


class Evolution(Strategy):
    """Regularized (aging) evolution (``samplers.RegularizedEvolutionSampler``)."""

    name = "evolution"
    uses_reward = True

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from edgeflow.methods.nas.samplers import RegularizedEvolutionSampler

        return RegularizedEvolutionSampler(o.fitness, o.population, o.tournament, seed=o.seed)


class RL(Strategy):
    """A REINFORCE controller (``samplers.ReinforceSampler``)."""

    name = "rl"
    uses_reward = True

    def sampler(self, o: SamplerOptions) -> BaseSampler:
        from edgeflow.methods.nas.samplers import ReinforceSampler

        return ReinforceSampler(o.fitness, lr=o.controller_lr, baseline_decay=o.baseline_decay, seed=o.seed)


STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (Random, TPE, NSGA2, GP, CMAES, Grid, Evolution, RL)}

