"""Stage ``nas``: neural architecture search over a YAML search space, then the chosen architecture
(fresh weights) becomes the pipeline's model, which later stages train, compress, export and profile.

A thin adapter over ``edgeflow.methods.nas``. Each trial (a child context ``trial_<n>``: own folder,
seed and nested MLflow run whose params are the choices and whose metrics are the objectives):

1. samples a candidate from ``space`` and builds it with ``build_model`` (a normal zoo model);
2. costs it on the target (``hardware``, default the run's) at ``bits`` with the hardware model;
3. rejects it if a ``constraints`` entry fails (``infeasible``: no training);
4. trains it ``trial_epochs`` epochs on a ``subset`` of the training split, reporting each epoch's
   ``val_acc`` to the ``pruner`` (single-objective studies), unless no objective needs accuracy;
5. tells the study its ``objectives`` (or, with ``scalarize``, the MnasNet reward
   ``acc · (cost / reward_target)^reward_w``, cost = the first cost objective).

Every trial stores a scalar ``reward`` (the single objective, or the MnasNet reward when there are
several), which ``evolution`` and ``rl`` rank by. The study lives in Optuna storage (``storage``:
default ``sqlite:///<home>/optuna.db`` beside ``mlflow.db``, any RDB URL, or a journal file
``*.log``) under ``study_name`` (default: a digest of everything the trials depend on), so rerunning
the command resumes it and several processes share it (``edgeflow.methods.nas.search``).

Metrics: ``trials`` (counted trials in the study), ``complete``, ``pruned``, ``infeasible``,
``failed``, ``ran`` (trials this run), ``pareto_size``, ``hypervolume`` (of the objectives' front,
accuracy as error fraction with reference 1, costs divided by their largest value among complete
trials with reference 1.1), ``chosen_trial`` and the chosen candidate's ``val_acc`` (proxy) and
costs. Artifacts: ``trials.csv``, ``pareto.png``, ``history.png``, ``architecture.yaml``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import MAX_EPOCHS, ConfigError, is_finite, require, require_choice, require_int
from edgeflow.methods.nas.objectives import COSTS, METRICS, direction, mnas_reward, parse_constraint
from edgeflow.methods.nas.space import SearchSpace, parse
from edgeflow.methods.nas.strategies import STRATEGIES, SamplerOptions
from edgeflow.stages._schema import StageConfig
from edgeflow.training.schema import OPTIMIZERS

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult

PRUNERS = ("none", "median", "halving", "hyperband")
SELECT = ("best", "knee")
JOURNAL_SUFFIXES = (".log", ".journal")


@dataclass
class Config(StageConfig):
    """Options of the nas stage (README "Neural architecture search" documents each)."""

    kind: str = "nas"
    space: Any = None                  # a search space (conf/search_space/<name>.yaml)
    strategy: str = "tpe"              # random | tpe | nsga2 | gp | cmaes | grid | evolution | rl
    n_trials: int = 20
    objectives: list[str] = field(default_factory=lambda: ["val_acc", "latency_ms"])
    constraints: list[str] = field(default_factory=lambda: ["fits"])
    scalarize: bool = False            # one objective: the MnasNet reward instead of a Pareto front
    reward_target: float | None = None  # T of acc·(cost/T)^w, in the unit of the first cost objective
    reward_w: float = -0.07            # w of acc·(cost/T)^w (MnasNet soft constraint)
    bits: int = 8                      # deployment bit-width the costs assume
    hardware: str | None = None        # target costed (null: the run's)
    trial_epochs: int = 3
    subset: float = 1.0                # fraction of the training split each trial trains on
    lr: float = 0.01
    optimizer: str = "adam"
    pruner: str = "none"               # none | median | halving | hyperband (single objective only)
    select: Any = "knee"               # best | knee | {max_acc_under: {latency_ms: 5}}
    storage: str | None = None         # null: sqlite:///<home>/optuna.db; an RDB URL; a journal *.log file
    study_name: str | None = None      # null: nas-<digest of what the trials depend on>
    heartbeat_s: int = 60              # RDB heartbeat; a silent trial is abandoned after 2x
    population: int = 10               # nsga2 generation; evolution population
    tournament: int = 3                # evolution: tournament sample size
    startup_trials: int = 5            # tpe, gp, cmaes: random trials first
    controller_lr: float = 0.2         # rl: policy step size
    baseline_decay: float = 0.8        # rl: moving-average baseline decay
    plots: bool = True

    def __post_init__(self) -> None:
        self.parsed_space()
        require_choice(self.strategy, "strategy", tuple(STRATEGIES))
        require_int(self.n_trials, "n_trials", 1, 1_000_000)
        self._check_objectives()
        for i, text in enumerate(self.constraints):
            parse_constraint(text, f"constraints.{i}")
        require(self.reward_target is None or (is_finite(self.reward_target) and self.reward_target > 0),
                "reward_target", "a finite number > 0 or null", self.reward_target)
        require(is_finite(self.reward_w) and -10 <= self.reward_w <= 0, "reward_w", "a finite number in [-10, 0]",
                self.reward_w)
        require_choice(self.bits, "bits", (1, 2, 4, 8, 16, 32))
        require(self.hardware is None or isinstance(self.hardware, str), "hardware", "null or a target name",
                self.hardware)
        if self.hardware is not None:
            from edgeflow.stages._targets import check_targets

            check_targets(self.hardware)
        require_int(self.trial_epochs, "trial_epochs", 1, MAX_EPOCHS)
        require(is_finite(self.subset) and 0 < self.subset <= 1, "subset", "a float in (0, 1]", self.subset)
        require(is_finite(self.lr) and 0 < self.lr <= 10, "lr", "a finite float in (0, 10]", self.lr)
        require_choice(self.optimizer, "optimizer", OPTIMIZERS)
        require_choice(self.pruner, "pruner", PRUNERS)
        self._check_select()
        self._check_storage()
        require(self.study_name is None or (isinstance(self.study_name, str) and self.study_name.strip() != ""),
                "study_name", "null or a non-empty name", self.study_name)
        require_int(self.heartbeat_s, "heartbeat_s", 1, 86_400)
        require_int(self.population, "population", 2, 10_000)
        require_int(self.tournament, "tournament", 2, self.population if self.strategy == "evolution" else 10_000)
        require_int(self.startup_trials, "startup_trials", 0, 1_000_000)
        require(is_finite(self.controller_lr) and 0 < self.controller_lr <= 100, "controller_lr",
                "a finite float in (0, 100]", self.controller_lr)
        require(is_finite(self.baseline_decay) and 0 <= self.baseline_decay < 1, "baseline_decay",
                "a float in [0, 1)", self.baseline_decay)
        self._check_strategy()

    def parsed_space(self) -> SearchSpace:
        """The validated ``space`` (``ConfigError`` under ``space`` when it is missing or wrong)."""
        if self.space is None:
            from edgeflow.core.home import PROJECT_ROOT

            names = sorted(p.stem for p in (PROJECT_ROOT / "conf" / "search_space").glob("*.yaml"))
            raise ConfigError("space", "is required: add `- /search_space@stages.<stage>.space: <name>` to the "
                                       f"recipe's defaults (spaces: {', '.join(names)})")
        try:
            return parse(self.space)
        except ConfigError as err:
            raise err.under("space") from None

    def _check_objectives(self) -> None:
        objectives = self.objectives
        require(isinstance(objectives, list) and len(objectives) > 0, "objectives",
                f"a non-empty list of metrics among {', '.join(METRICS)}", objectives)
        for i, metric in enumerate(objectives):
            if metric not in METRICS:
                raise ConfigError(f"objectives.{i}", f"{metric!r} is not a metric; allowed: {', '.join(METRICS)}")
        require(len(set(objectives)) == len(objectives), "objectives", "a list without repeats", objectives)
        if self.scalarize:
            require("val_acc" in objectives and len(objectives) >= 2, "scalarize",
                    "false unless objectives hold val_acc and a cost (the MnasNet reward combines them)",
                    self.scalarize)

    def _check_select(self) -> None:
        allowed = "best, knee or {max_acc_under: {<cost>: <limit>, ...}}"
        if isinstance(self.select, str):
            require_choice(self.select, "select", SELECT)
            return
        limits = self.select.get("max_acc_under") if isinstance(self.select, dict) else None
        require(isinstance(self.select, dict) and list(self.select) == ["max_acc_under"] and isinstance(limits, dict)
                and len(limits) > 0, "select", allowed, self.select)
        for cost, limit in limits.items():
            require(cost in COSTS, f"select.max_acc_under.{cost}", "a cost among " + ", ".join(COSTS), cost)
            require(is_finite(limit), f"select.max_acc_under.{cost}", "a finite number", limit)
        require("val_acc" in self.objectives, "select", "best or knee when val_acc is not an objective", self.select)

    def _check_storage(self) -> None:
        s = self.storage
        ok = s is None or (isinstance(s, str) and ("://" in s or s.endswith(JOURNAL_SUFFIXES)))
        require(ok, "storage", "null (sqlite:///<home>/optuna.db), an RDB URL (sqlite:///..., postgresql://...) "
                               "or a journal file path ending in .log", s)

    def _check_strategy(self) -> None:
        strategy = STRATEGIES[self.strategy]()
        problem = strategy.problem(self.parsed_space())
        if problem:
            raise ConfigError("strategy", problem)
        several = len(self.objectives) > 1 and not self.scalarize
        if several and not strategy.multi_objective:
            raise ConfigError("strategy", f"{self.strategy} optimises one objective; objectives has "
                                          f"{len(self.objectives)}: set scalarize: true or use nsga2, tpe, random")
        if len(self.objectives) > 1 and (self.scalarize or strategy.uses_reward) and self.reward_target is None:
            why = "scalarize" if self.scalarize else f"strategy {self.strategy} ranks by the reward"
            raise ConfigError("reward_target", f"is required with {len(self.objectives)} objectives ({why}: "
                                               f"acc·(cost/reward_target)^reward_w)")
        if self.pruner != "none" and (several or "val_acc" not in self.objectives):
            raise ConfigError("pruner", "must be none unless the study has one objective that trains "
                                        "(val_acc, or scalarize: true): Optuna cannot prune multi-objective studies")

    # ------------------------------------------------------------------------ derived
    @property
    def directions(self) -> list[str]:
        return ["maximize"] if self.scalarize else [direction(m) for m in self.objectives]

    def reward(self, metrics: dict[str, float]) -> float | None:
        """The trial's scalar reward: the single objective (negated when minimised), else the MnasNet
        reward of ``val_acc`` (fraction; 1 without it) and the first cost objective (None without
        ``reward_target``)."""
        if len(self.objectives) == 1:
            value = float(metrics[self.objectives[0]])
            return value if direction(self.objectives[0]) == "maximize" else -value
        if self.reward_target is None:
            return None
        acc = metrics["val_acc"] / 100 if "val_acc" in self.objectives else 1.0
        cost = next(m for m in self.objectives if m != "val_acc")
        return mnas_reward(acc, float(metrics[cost]), float(self.reward_target), self.reward_w)


def check(cfg: Config, state: State) -> None:
    """Before any run: the space's model takes the data's input shape (rank, minimum sizes)."""
    from edgeflow.models.schemas import MODEL_SCHEMAS

    space = cfg.parsed_space()
    try:
        MODEL_SCHEMAS[space.model](name=space.model, input_shape=list(state.input_shape),
                                   num_classes=state.num_classes, **space.fixed)
    except ConfigError as err:
        raise ConfigError("space.model", f"{space.model} cannot take this dataset: {err}") from None


def _study_name(cfg: Config, ctx: StageContext, target: Any) -> str:
    """``study_name``, or ``nas-<digest>`` of everything a trial's result depends on."""
    if cfg.study_name:
        return cfg.study_name
    keys = asdict(cfg)
    for k in ("n_trials", "storage", "study_name", "select", "plots", "heartbeat_s"):
        keys.pop(k)
    data = ctx.data
    keys.update(seed=ctx.seed, target=repr(target.cfg), data=repr(getattr(data, "cfg", type(data).__name__)))
    return "nas-" + hashlib.blake2b(json.dumps(keys, sort_keys=True, default=str).encode(), digest_size=6).hexdigest()


def _storage(cfg: Config) -> tuple[Any, Any]:
    """(Optuna storage, lock factory): a file lock ``<file>.nas-lock`` for a local SQLite or journal file
    (not ``<file>.lock``: Optuna's journal lock is that symlink), none otherwise."""
    import contextlib
    import warnings
    from functools import partial

    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    from edgeflow.core.home import home
    from edgeflow.methods.nas.search import file_lock

    url = cfg.storage or f"sqlite:///{home() / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in url:
        return JournalStorage(JournalFileBackend(url)), partial(file_lock, f"{url}.nas-lock")
    local = url.startswith("sqlite:///")
    lock = partial(file_lock, f"{url[len('sqlite:///'):]}.nas-lock") if local else contextlib.nullcontext
    with lock(), warnings.catch_warnings():  # one worker creates the tables; heartbeat_interval is experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(url, heartbeat_interval=cfg.heartbeat_s,
                             engine_kwargs={"connect_args": {"timeout": 60}} if local else None)
    return storage, lock


def _pruner(cfg: Config) -> Any:
    from optuna import pruners

    return {"none": pruners.NopPruner, "median": lambda: pruners.MedianPruner(n_startup_trials=2),
            "halving": pruners.SuccessiveHalvingPruner,
            "hyperband": lambda: pruners.HyperbandPruner(min_resource=1, max_resource=cfg.trial_epochs)}[cfg.pruner]()


def _evaluate(trial: Any, cfg: Config, space: SearchSpace, state: State, ctx: StageContext, target: Any,
              data: Any) -> Any:
    """Judge one trial (see the module docstring) in its child context; errors propagate (failed trial)."""
    import optuna
    import torch

    from edgeflow.hardware import analyze
    from edgeflow.methods.nas.objectives import parse_constraint
    from edgeflow.methods.nas.proxy import ReportToTrial
    from edgeflow.methods.nas.search import REASON, Outcome
    from edgeflow.models import build_model
    from edgeflow.tracking import flatten
    from edgeflow.training import fit
    from edgeflow.training.schema import TrainingStageConfig

    with ctx.child(f"trial_{trial.number}", tags={"nas.trial": str(trial.number)}) as sub:
        options = space.sample(trial)
        trial.set_user_attr("options", options)
        sub.tracker.log_params({**{f"choice.{k}": str(v) for k, v in trial.params.items()},
                                **flatten({"model": {"name": space.model, **options}})})
        torch.manual_seed(sub.seed)
        model = build_model(space.model, state.input_shape, state.num_classes, **options)
        metrics = {k: float(v) for k, v in
                   target.estimate(analyze(model, state.input_shape, default_bits=cfg.bits), warn=False).metrics().items()}
        sub.log_metrics(metrics)
        broken = [str(c) for c in (parse_constraint(t, "") for t in cfg.constraints) if not c.holds(metrics)]
        if broken:
            sub.tracker.set_tag("nas.outcome", "infeasible")
            return Outcome("infeasible", attrs={**metrics, REASON: "violates " + ", ".join(broken)})
        if "val_acc" in cfg.objectives:
            train_cfg = TrainingStageConfig(kind="train", max_epochs=cfg.trial_epochs, lr=cfg.lr, optimizer=cfg.optimizer)
            report = ReportToTrial(trial, lambda acc: cfg.reward({**metrics, "val_acc": acc}) if cfg.scalarize else acc)
            try:
                fitted = fit(model, replace(sub, data_source=lambda: data), train_cfg,
                             callbacks=[report] if cfg.pruner != "none" else [])
            except optuna.TrialPruned as err:
                sub.tracker.set_tag("nas.outcome", "pruned")
                return Outcome("pruned", attrs={**metrics, REASON: str(err)})
            metrics["val_acc"] = fitted["best_val_acc"]
        reward = cfg.reward(metrics)
        if reward is not None:
            metrics["reward"] = reward
        sub.log_metrics({k: metrics[k] for k in ("val_acc", "reward") if k in metrics})
        sub.tracker.set_tag("nas.outcome", "complete")
        values = [metrics["reward"]] if cfg.scalarize else [metrics[m] for m in cfg.objectives]
        return Outcome("complete", values, attrs=metrics)


def _write(study: Any, cfg: Config, space: SearchSpace, complete: list, front: list, chosen: Any, out_dir: Any,
           note: str) -> dict[str, Any]:
    """trials.csv, pareto.png and history.png (``plots``), architecture.yaml; returns the artifacts."""
    from edgeflow.methods.nas.plots import plot_front, plot_history
    from edgeflow.methods.nas.search import OUTCOME, REASON
    from edgeflow.stages._common import write_csv

    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append({"number": t.number, "outcome": attrs.get(OUTCOME, t.state.name.lower()),
                     **{k: attrs[k] for k in (*METRICS, "fits", "reward") if k in attrs},
                     **{f"choice.{k}": v for k, v in t.params.items()}, REASON: attrs.get(REASON, ""),
                     "duration_s": t.duration.total_seconds() if t.duration else ""})
    artifacts = {"trials": write_csv(out_dir / "trials.csv", rows)}
    if cfg.plots:
        numbers = [t.number for t in complete]
        shown = cfg.objectives if not cfg.scalarize else [*cfg.objectives, "reward"]
        series = {m: ([t.user_attrs[m] for t in complete], m in ("val_acc", "reward")) for m in shown}
        artifacts["history"] = plot_history(numbers, series, out_dir / "history.png")
        costs = [m for m in cfg.objectives if m != "val_acc"]
        if "val_acc" in cfg.objectives and costs:
            points = [{"number": t.number, **t.user_attrs} for t in complete]
            artifacts["pareto"] = plot_front(points, "val_acc", costs, {t.number for t in front}, chosen.number,
                                             out_dir / "pareto.png")
    options = chosen.user_attrs["options"]
    overrides = " ".join(f"model.{k}={json.dumps(v).replace(' ', '')}" for k, v in options.items())
    lines = [f"# {note}", "# copy to conf/model/<name>.yaml and pass model=<name>, or override on the command line:",
             f"#   model={space.model} {overrides}", f"name: {space.model}", "input_shape: ${dataset.input_shape}",
             "num_classes: ${dataset.num_classes}", "checkpoint: null",
             *(f"{k}: {json.dumps(v)}" for k, v in options.items())]
    path = out_dir / "architecture.yaml"
    path.write_text("\n".join(lines) + "\n")
    artifacts["architecture"] = path
    return artifacts


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from functools import partial

    import optuna
    import torch
    from optuna.trial import TrialState

    from edgeflow.methods.nas.proxy import SubsetData
    from edgeflow.methods.nas.search import counts, run_search
    from edgeflow.methods.nas.selection import choose, front_of, normalized_hypervolume
    from edgeflow.models import build_model
    from edgeflow.state import StageResult, State

    space = cfg.parsed_space()
    target = ctx.target(cfg.hardware)
    storage, lock = _storage(cfg)
    name = _study_name(cfg, ctx, target)
    options = SamplerOptions(space, ctx.seed, lambda t: t.user_attrs.get("reward"), cfg.population, cfg.tournament,
                             cfg.startup_trials, cfg.controller_lr, cfg.baseline_decay)
    with lock():
        study = optuna.create_study(storage=storage, study_name=name, directions=cfg.directions,
                                    sampler=STRATEGIES[cfg.strategy]().sampler(options), pruner=_pruner(cfg),
                                    load_if_exists=True)
    data = SubsetData(ctx.data, cfg.subset, ctx.seed) if cfg.subset < 1 else ctx.data
    ran = run_search(study, cfg.n_trials, partial(_evaluate, cfg=cfg, space=space, state=state, ctx=ctx,
                                                  target=target, data=data), lock)
    tally = counts(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        reasons = sorted({t.user_attrs.get("reason", "") for t in study.get_trials(deepcopy=False)} - {""})
        raise RuntimeError(f"no candidate completed ({tally}); reasons: {'; '.join(reasons[:3])}")
    try:
        chosen = choose(complete, cfg.objectives, cfg.select, cfg.scalarize)
    except ValueError as err:
        raise ConfigError("select", str(err).partition(": ")[2]) from None
    front = front_of(complete, cfg.objectives) if len(cfg.objectives) > 1 else [chosen]
    metrics = {"trials": float(sum(tally[k] for k in ("complete", "pruned", "infeasible", "failed"))),
               **{k: float(tally[k]) for k in ("complete", "pruned", "infeasible", "failed")}, "ran": float(ran),
               "pareto_size": float(len(front)), "chosen_trial": float(chosen.number),
               **{k: float(chosen.user_attrs[k]) for k in (*METRICS, "fits", "reward") if k in chosen.user_attrs}}
    if len(cfg.objectives) > 1:
        metrics["hypervolume"] = normalized_hypervolume(complete, cfg.objectives)
    note = (f"chosen by stage {ctx.name} (study {name}, trial {chosen.number}): "
            + ", ".join(f"{m} {chosen.user_attrs[m]:g}" for m in cfg.objectives) + f" on {target.name} at {cfg.bits} bits")
    artifacts = _write(study, cfg, space, complete, front, chosen, ctx.out_dir, note)
    ctx.tracker.set_tag("nas.study", name)
    torch.manual_seed(ctx.seed)
    model = build_model(space.model, state.input_shape, state.num_classes, **chosen.user_attrs["options"])
    return StageResult(state=State.of(model, state.input_shape, state.num_classes, history=state.history),
                       metrics=metrics, artifacts=artifacts)
