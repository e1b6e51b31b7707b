"""Stage ``prune``: unstructured magnitude (with schedules), structured channel pruning with real
thinning, or N:M sparsity; then fine-tuning. See the README's "Pruning" section for every option.

Masks live in the model as ``weight_mask`` buffers (see ``edgeflow.methods.pruning.masks``), so
later stages (QAT, export, profile) keep the sparsity. Structured pruning returns a thinner model
(fewer channels), which every later stage simply reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import MAX_EPOCHS, ConfigError, require, require_choice, require_finite
from edgeflow.methods.pruning.schedules import KINDS, UNITS, SparsitySchedule
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult

METHODS = ("magnitude", "structured", "nm")
SCOPES = ("layer", "global")
CRITERIA = ("l1", "l2", "bn_scale")
REWINDS = ("none", "init", "epoch")
ENERGY_METRICS = ("energy", "latency")


@dataclass
class Config(TrainingStageConfig):
    """Options of the prune stage (training options: see ``TrainingStageConfig``)."""

    lr: float = 0.002                  # fine-tuning: lower than train's
    method: str = "magnitude"          # magnitude | structured | nm
    target_sparsity: float = 0.8       # magnitude: fraction of weights; structured: of channels
    schedule: str = "agp"              # constant | linear | polynomial | agp | exponential
    initial_sparsity: float = 0.0
    exponent: float = 3.0              # polynomial only
    unit: str = "epoch"                # step | epoch | cycle
    begin: int = 0
    end: int = 5
    frequency: int = 1
    scope: str = "global"              # global | layer
    exclude: list[str] = field(default_factory=list)
    energy_aware: bool = False
    energy_metric: str = "energy"      # energy | latency (per-layer cost from the hardware model)
    energy_power: float = 1.0
    max_layer_sparsity: float = 0.95
    n: int = 2                         # nm: keep n of every m
    m: int = 4
    criterion: str = "l1"              # structured: l1 | l2 | bn_scale
    slimming_l1: float = 1e-4          # bn_scale: L1 penalty strength on BatchNorm scales
    slimming_epochs: int = 0           # bn_scale: epochs of penalised training before pruning
    channel_multiple: int = 1          # structured: kept channels rounded up to a multiple
    rewind: str = "none"               # none | init | epoch (unit=cycle, magnitude only)
    rewind_epoch: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice(self.method, "method", METHODS)
        require_choice(self.schedule, "schedule", KINDS)
        require_choice(self.unit, "unit", UNITS)
        require_choice(self.scope, "scope", SCOPES)
        require_choice(self.criterion, "criterion", CRITERIA)
        require_choice(self.rewind, "rewind", REWINDS)
        require_choice(self.energy_metric, "energy_metric", ENERGY_METRICS)
        require(all(isinstance(p, str) and p for p in self.exclude), "exclude",
                "a list of module-name glob patterns", self.exclude)
        require_finite(self.energy_power, "energy_power", "a finite float >= 0", self.energy_power >= 0)
        require(0 < self.max_layer_sparsity < 1, "max_layer_sparsity", "in (0, 1)",
                self.max_layer_sparsity)
        require(2 <= self.m <= 1024, "m", "an integer in [2, 1024]", self.m)
        require(1 <= self.n < self.m, "n", f"an integer in [1, m-1] = [1, {self.m - 1}]", self.n)
        require_finite(self.slimming_l1, "slimming_l1", "a finite float >= 0", self.slimming_l1 >= 0)
        require(0 <= self.slimming_epochs <= MAX_EPOCHS, "slimming_epochs", f"an integer in [0, {MAX_EPOCHS}]",
                self.slimming_epochs)
        require(1 <= self.channel_multiple <= 1024, "channel_multiple", "an integer in [1, 1024]",
                self.channel_multiple)
        for key in ("begin", "end", "frequency"):
            require(getattr(self, key) <= MAX_EPOCHS, key, f"an integer <= {MAX_EPOCHS}", getattr(self, key))
        require_finite(self.exponent, "exponent", "a finite float > 0", self.exponent > 0)
        if self.method == "nm":
            return  # one-shot N:M masks then one fine-tuning fit; schedule keys unused
        sched = self.sparsity_schedule()  # range checks of the schedule keys
        if self.method == "structured":
            require(self.unit == "cycle", "unit",
                    "'cycle' for method=structured (the model is thinned between fits)", self.unit)
            require(self.scope in SCOPES, "scope", "layer or global", self.scope)
        if self.unit == "epoch":
            sched.check(self.max_epochs)
        if self.rewind != "none":
            require(self.method == "magnitude" and self.unit == "cycle", "rewind",
                    "'none' unless method=magnitude and unit=cycle (rewind happens between cycles)",
                    self.rewind)
        if self.rewind == "epoch":
            require(0 <= self.rewind_epoch < self.max_epochs, "rewind_epoch",
                    f"an epoch index in [0, max_epochs-1] = [0, {self.max_epochs - 1}]",
                    self.rewind_epoch)

    def sparsity_schedule(self) -> SparsitySchedule:
        return SparsitySchedule(
            kind=self.schedule, final=self.target_sparsity, initial=self.initial_sparsity,
            begin=self.begin, end=self.end, frequency=self.frequency, unit=self.unit,
            exponent=self.exponent,
        )


# ----------------------------------------------------------------------------------- helpers
def _with(cfg: Config, **changes: Any) -> Config:
    return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------------- run
def check(cfg: Config, state: State) -> None:
    """Before any training: every ``exclude`` pattern selects a Conv/Linear layer of the model."""
    from edgeflow.methods.pruning.masks import matches
    from edgeflow.stages._patterns import require_matches

    require_matches("exclude", cfg.exclude, state.model, lambda name, pattern: matches(name, [pattern]))


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from collections.abc import Sequence
    from functools import partial

    from edgeflow.hardware import analyze
    from edgeflow.methods import pruning as P
    from edgeflow.stages._common import write_csv
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate, fit

    model = state.copy_model()  # pruned in place; the state we got stays as it was
    shape = tuple(state.input_shape)
    exclude = list(cfg.exclude)
    metrics: dict[str, float] = {}
    artifacts: dict[str, Any] = {}
    if "test_acc" not in state.reference_metrics:
        state = state.with_reference(test_acc=evaluate(model, ctx)["test_acc"])
    dense_cost = analyze(model, shape)

    def train(mdl: Any, callbacks: Sequence[Any] = ()) -> dict[str, float]:
        return fit(mdl, ctx, cfg, callbacks=callbacks)

    energy = {"max_layer": cfg.max_layer_sparsity, "power": cfg.energy_power}
    schedule_rows: list[dict] = []
    if cfg.method == "magnitude":
        costs = P.layer_costs(model, shape, ctx.hardware, cfg.energy_metric) if cfg.energy_aware else None
        prune_to = P.magnitude_pruner(scope=cfg.scope, exclude=exclude, costs=costs, **energy)
        measure = partial(P.global_sparsity, exclude=exclude)
        if cfg.unit == "cycle":
            schedule_rows = P.iterative_magnitude(
                model, cfg.sparsity_schedule(), prune_to, train, rewind=cfg.rewind,
                rewind_epoch=cfg.rewind_epoch, measure=measure, log=ctx.log_metrics)
        else:
            schedule_rows = P.magnitude_during_fit(model, cfg.sparsity_schedule(), prune_to, train,
                                                   measure=measure, log=ctx.log_metrics)
    elif cfg.method == "nm":
        P.nm_prune(model, cfg.n, cfg.m, exclude=exclude)
        fit(model, ctx, cfg)
        metrics["nm_ok"] = float(all(
            P.check_nm(m.weight, cfg.n, cfg.m) for m in P.prunable_layers(model, exclude).values()))
    else:  # structured
        if cfg.criterion == "bn_scale" and cfg.slimming_epochs > 0:
            fit(model, ctx, _with(cfg, max_epochs=cfg.slimming_epochs),
                extra_loss=P.bn_l1_penalty(model, cfg.slimming_l1))
        ratios = partial(P.energy_aware_group_ratios, input_shape=shape, hardware=ctx.hardware,
                         exclude=exclude, metric=cfg.energy_metric, **energy)
        model, group_rows, schedule_rows = P.structured_schedule(
            model, shape, cfg.sparsity_schedule(), train, criterion=cfg.criterion, scope=cfg.scope,
            exclude=exclude, group_ratio_fn=ratios if cfg.energy_aware else None,
            multiple=cfg.channel_multiple, log=ctx.log_metrics)
        if group_rows:
            artifacts["groups"] = write_csv(ctx.out_dir / "groups.csv", group_rows)

    # ------------------------------------------------------------------ report
    P.apply_masks(model)
    test = evaluate(model, ctx)
    cost = analyze(model, shape)
    report = P.sparsity_report(model)
    metrics.update({
        "test_acc": test["test_acc"],
        "test_loss": test["test_loss"],
        "acc_drop": state.reference_metrics["test_acc"] - test["test_acc"],
        "sparsity": report["total"]["sparsity"],
        "params": float(cost.params),
        "nonzero_params": float(cost.params - report["total"]["zeros"]),
        "macs": float(cost.macs),
        "params_ratio": cost.params / max(dense_cost.params, 1),
        "macs_ratio": cost.macs / max(dense_cost.macs, 1),
    })
    if cfg.method == "structured":  # thinning leaves no zero weights: report the channels removed
        kept = {g.name: g.channels for g in P.channel_groups(model, shape, exclude)}
        prunable = [g for g in P.channel_groups(state.model, shape, exclude) if not g.blocked]
        total = sum(g.channels for g in prunable)
        metrics["channel_sparsity"] = 1.0 - sum(kept[g.name] for g in prunable) / total if total else 0.0
    for name, row in report.items():
        if name != "total":
            metrics[f"sparsity/{name}"] = row["sparsity"]
    layers = P.storage_table(model, supported=tuple(ctx.hardware_option("sparse_formats")), m=cfg.m)
    metrics["weight_bytes_best"] = float(sum(r["best_bytes"] for r in layers))
    metrics["weight_bytes_dense"] = float(sum(r["dense_bytes"] for r in layers))
    artifacts["layers"] = write_csv(ctx.out_dir / "layers.csv", layers)
    if schedule_rows:
        artifacts["schedule"] = write_csv(ctx.out_dir / "schedule.csv", schedule_rows)
    return StageResult(state=state.with_model(model), metrics=metrics,
                       artifacts=artifacts)
