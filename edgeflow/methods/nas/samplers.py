"""Two search strategies written as Optuna samplers, so they share Optuna's storages, resume,
parallel workers and logging: regularized (aging) evolution and a REINFORCE controller.

Both rank finished trials by a scalar ``fitness(trial)`` (None for a trial without one); the NAS
stage passes the trial's ``reward`` user attribute (accuracy with the hardware penalty). They read
the study's finished trials from the storage whenever a new trial starts, so several workers on
one storage learn from each other's trials.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = ["RegularizedEvolutionSampler", "ReinforceSampler"]

Fitness = Callable[[FrozenTrial], "float | None"]


def _scored(study: Study, fitness: Fitness) -> list[tuple[FrozenTrial, float]]:
    """The study's complete trials that have a fitness, in trial-number order."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        value = fitness(t)
        if value is not None and math.isfinite(value):
            out.append((t, float(value)))
    return sorted(out, key=lambda pair: pair[0].number)


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


class RegularizedEvolutionSampler(BaseSampler):
    """Regularized (aging) evolution (Real et al., AAAI 2019).

    The population is the ``population`` most recent complete trials (the oldest leaves as a new one
    arrives: aging). Until it is full, candidates are random. Then each new candidate copies the
    fittest of ``sample_size`` members drawn at random (tournament) and changes exactly one of its
    choices to another random value; a choice the parent lacks (a new block) is drawn at random.
    """

    def __init__(self, fitness: Fitness, population: int = 10, sample_size: int = 3, seed: int | None = None) -> None:
        if not 2 <= sample_size <= population:
            raise ValueError(f"sample_size must be in [2, population={population}], got {sample_size}")
        self._fitness = fitness
        self._population = population
        self._sample_size = sample_size
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._plans: dict[int, tuple[dict[str, Any], str] | None] = {}

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict:
        return {}

    def _plan(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, Any], str] | None:
        """(parent's params, the choice to mutate), or None while the population is not full."""
        if trial._trial_id not in self._plans:
            scored = _scored(study, self._fitness)[-self._population:]
            plan = None
            if len(scored) >= self._population:
                picks = self._rng.choice(len(scored), size=self._sample_size, replace=False)
                parent = max((scored[i] for i in picks), key=lambda pair: pair[1])[0]
                names = sorted(parent.params)
                plan = (dict(parent.params), names[int(self._rng.integers(len(names)))])
            self._plans[trial._trial_id] = plan
        return self._plans[trial._trial_id]

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        plan = self._plan(study, trial)
        if plan is not None:
            parent, mutate = plan
            inherited = parent.get(param_name)
            if param_name != mutate and param_name in parent and _contains(param_distribution, inherited):
                return inherited
            if param_name == mutate:  # another value than the parent's, where there is one
                for _ in range(32):
                    value = self._random.sample_independent(study, trial, param_name, param_distribution)
                    if value != inherited:
                        return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._plans.pop(trial._trial_id, None)


class _Policy:
    """A softmax policy over the discrete options of one parameter (ints with many values and
    floats are cut into ``bins`` equal slices, linear or logarithmic, sampled uniformly inside)."""

    def __init__(self, dist: BaseDistribution, bins: int) -> None:
        self.dist = dist
        if isinstance(dist, CategoricalDistribution):
            self.options: list | None = list(dist.choices)
            n = len(self.options)
        elif isinstance(dist, IntDistribution) and (dist.high - dist.low) // dist.step + 1 <= bins:
            self.options = list(range(dist.low, dist.high + 1, dist.step))
            n = len(self.options)
        else:
            self.options = None
            n = bins
            lo, hi = float(dist.low), float(dist.high)
            self.edges = np.geomspace(lo, hi, n + 1) if dist.log else np.linspace(lo, hi, n + 1)
        self.logits = np.zeros(n)

    def probs(self) -> np.ndarray:
        z = np.exp(self.logits - self.logits.max())
        return z / z.sum()

    def draw(self, rng: np.random.Generator) -> Any:
        k = int(rng.choice(len(self.logits), p=self.probs()))
        if self.options is not None:
            return self.options[k]
        lo, hi = self.edges[k], self.edges[k + 1]
        value = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if self.dist.log else float(rng.uniform(lo, hi))
        if isinstance(self.dist, IntDistribution):
            step = self.dist.step
            value = self.dist.low + round((value - self.dist.low) / step) * step
            return int(min(max(value, self.dist.low), self.dist.high))
        return min(max(value, self.dist.low), self.dist.high)

    def index(self, value: Any) -> int | None:
        if self.options is not None:
            return self.options.index(value) if value in self.options else None
        k = int(np.searchsorted(self.edges, float(value), side="right")) - 1
        return min(max(k, 0), len(self.logits) - 1)


class ReinforceSampler(BaseSampler):
    """A REINFORCE controller (Zoph & Le, ICLR 2017) as a sampler: one independent softmax policy per
    parameter; after each finished trial with reward R, every chosen option's logits move by
    ``lr · A · (onehot − softmax)`` with the advantage ``A = (R − b) / s``, ``b`` a moving-average
    baseline (``b ← decay·b + (1 − decay)·R``) and ``s`` the moving average of ``|R − b|`` (reward
    scale, so ``lr`` does not depend on the reward's units). Conditional parameters learn only from
    the trials that had them.
    """

    def __init__(self, fitness: Fitness, lr: float = 0.2, baseline_decay: float = 0.8, bins: int = 16,
                 seed: int | None = None) -> None:
        self._fitness = fitness
        self._lr = lr
        self._decay = baseline_decay
        self._bins = bins
        self._rng = np.random.default_rng(seed)
        self._policies: dict[str, _Policy] = {}
        self._seen: set[int] = set()
        self._baseline: float | None = None
        self._scale = 0.0

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict:
        return {}

    def _policy(self, name: str, dist: BaseDistribution) -> _Policy:
        if name not in self._policies or self._policies[name].dist != dist:
            self._policies[name] = _Policy(dist, self._bins)
        return self._policies[name]

    def _learn(self, study: Study) -> None:
        """One policy-gradient step per finished trial not learned from yet, in trial order."""
        for t, reward in _scored(study, self._fitness):
            if t.number in self._seen:
                continue
            self._seen.add(t.number)
            if self._baseline is None:
                self._baseline = reward
                continue
            gap = reward - self._baseline
            self._scale = abs(gap) if self._scale == 0 else self._decay * self._scale + (1 - self._decay) * abs(gap)
            advantage = gap / self._scale if self._scale > 0 else 0.0
            for name, value in t.params.items():
                policy = self._policy(name, t.distributions[name])
                k = policy.index(value)
                if k is None:
                    continue
                grad = -policy.probs()
                grad[k] += 1.0
                policy.logits += self._lr * advantage * grad
            self._baseline = self._decay * self._baseline + (1 - self._decay) * reward

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._learn(study)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._policy(param_name, param_distribution).draw(self._rng)

    def probabilities(self, name: str) -> dict[Any, float]:
        """The policy's current probability of each option (or bin start) of parameter ``name``."""
        policy = self._policies[name]
        keys = policy.options if policy.options is not None else [float(e) for e in policy.edges[:-1]]
        return dict(zip(keys, (float(p) for p in policy.probs())))

