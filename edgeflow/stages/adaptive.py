"""Stage ``adaptive``: build an adaptive system, calibrate its threshold on validation data, report
the operating curve ("adaptive calibration").

- ``system: big_little``: the model entering the stage is *big*; *little* is the zoo model ``little``,
  trained here (a sub-run ``little``) with the stage's training settings;
- ``system: variable_width``: the entering zoo model (cnn, tcn, mlp) becomes slimmable at ``widths``
  (fractions of its channels; a BatchNorm per width), all widths fine-tuned together from its weights;
  ``params`` (the one network) and ``static_params`` (one plain model per width) are reported;
- ``system: early_exit``: heads at ``exits`` (module paths among the chain units holding a
  Conv/Linear, or fractions of depth), trained with the weighted exit loss ``exit_weights`` jointly
  with the backbone (``train: joint``) or alone on the frozen backbone (``train: heads``).

With ``quantize`` (``QuantConfig`` keys) the trained system becomes int8 parts (PTQ on 8 training
batches) before calibration, so the system's scores are int8 scores and ``export`` / ``profile``
deploy it part by part: big/little both models; variable width the plain model of every width;
early exit every backbone segment and exit head, calibrated in chain order, the part after a
segment reading its int8 output with the same scale and zero point
(``edgeflow.methods.adaptive.int8``).

Then every path runs on the **validation** split, the threshold θ sweeps [0, 1] (one θ for every
decision; a sample is served by the first path whose ``measure`` is above θ) and ``rule`` picks the
operating point (``theta`` fixes it instead); only then does the test split run, at that θ. Costs
are the analytical model of ``hardware`` (the run's target by default), layers without quantizers at
``default_bits``. The system (parts and thresholds in one module) joins the state as ``adaptive``;
``model`` stays the model that entered (with ``quantize``: the system's int8 biggest path — big, the
widest model, or the early-exit backbone without its heads).

Metrics: ``test_acc`` (the system at θ, through its own forward), ``big_test_acc`` (the biggest path
alone), ``acc_drop`` (big − system), ``val_acc``, ``theta``, ``rule_met``, ``expected_energy_uj``,
``expected_latency_ms``, ``energy_ratio`` / ``latency_ratio`` (over the biggest path alone),
``share_<path>`` (test shares), ``big_energy_uj``, ``big_latency_ms``. Files: ``curve.csv`` (every
θ: validation and test accuracy, shares, expected costs) and ``curve.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import ConfigError, is_finite, require, require_choice, require_finite, require_int
from edgeflow.stages._common import quant_config
from edgeflow.stages._targets import check_targets
from edgeflow.stages._zoo_spec import check_spec
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import StageContext, StageResult, State

SYSTEMS = ("big_little", "early_exit", "variable_width")
SLIMMABLE = ("cnn", "tcn", "mlp")                   # = edgeflow.methods.adaptive.slimmable.SLIMMABLE
MEASURES = ("max_prob", "score_margin", "entropy")   # = edgeflow.methods.adaptive.MEASURES
COSTS = ("energy_uj", "latency_ms")                  # = edgeflow.methods.adaptive.calibrate.COSTS
RULES = ("min_cost_at_drop", "max_acc_under")
DEFAULT_RULE = {"min_cost_at_drop": 0.5}  # rule: null
ADAPTIVE = "adaptive"
log = logging.getLogger("edgeflow")


def check_rule(rule: Any) -> None:
    """``rule`` is ``{min_cost_at_drop: points >= 0}`` or ``{max_acc_under: {energy_uj|latency_ms: > 0}}``."""
    if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in RULES:
        raise ConfigError("rule", f"must be {{min_cost_at_drop: <points>}} or {{max_acc_under: {{energy_uj: <uJ>}}}} "
                                  f"(or latency_ms), got {rule!r}")
    (name, value), = rule.items()
    if name == "min_cost_at_drop":
        require_finite(value, "rule.min_cost_at_drop", "a finite number of points in [0, 100]", 0 <= value <= 100)
        return
    ok = isinstance(value, dict) and len(value) == 1 and next(iter(value)) in COSTS
    require(ok and is_finite(next(iter(value.values()))) and next(iter(value.values())) > 0, "rule.max_acc_under",
            "a mapping of one cost (energy_uj or latency_ms) to a finite limit > 0", value)


@dataclass
class Config(TrainingStageConfig):
    """See the module docstring; training settings train *little* or the exit heads."""

    kind: str = "adaptive"
    max_epochs: int = 20
    lr: float = 0.01
    system: str = "big_little"
    measure: str = "score_margin"
    little: Any = None
    exits: list[Any] = field(default_factory=lambda: [0.5])
    widths: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    exit_weights: list[float] = field(default_factory=list)
    train: str = "joint"
    rule: Any = None
    objective: str = "energy_uj"
    theta: float | None = None
    steps: int = 100
    default_bits: int = 8
    hardware: str | None = None
    quantize: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice(self.system, "system", SYSTEMS)
        require_choice(self.measure, "measure", MEASURES)
        if self.system == "big_little" or self.little is not None:
            require(self.little is not None, "little", "a zoo model mapping for system big_little "
                    "({name: cnn, channels: [4, 8]})", self.little)
            check_spec(self.little, "little")
        require(len(self.exits) >= 1 and all(
            (isinstance(p, str) and p) or (is_finite(p) and not isinstance(p, str) and 0 < p < 1) for p in self.exits),
            "exits", "a non-empty list of module paths or fractions of depth in (0, 1)", self.exits)
        if self.exit_weights:
            require(len(self.exit_weights) == len(self.exits) + 1, "exit_weights",
                    f"[] (equal) or {len(self.exits) + 1} weights (one per exit, then the final classifier)",
                    self.exit_weights)
            require(all(is_finite(w) and w >= 0 for w in self.exit_weights) and sum(self.exit_weights) > 0,
                    "exit_weights", "finite weights >= 0, not all 0", self.exit_weights)
        require(len(self.widths) >= 2 and all(is_finite(w) and 0 < w <= 1 for w in self.widths)
                and all(a < b for a, b in zip(self.widths, self.widths[1:])), "widths",
                "two or more increasing fractions in (0, 1]", self.widths)
        require_choice(self.train, "train", ("joint", "heads"))
        if self.rule is not None:
            check_rule(self.rule)
        require_choice(self.objective, "objective", COSTS)
        if self.theta is not None:
            require_finite(self.theta, "theta", "null (calibrate) or a threshold in [0, 1]", 0 <= self.theta <= 1)
        require_int(self.steps, "steps", 1, 100_000)
        require(self.default_bits in (1, 2, 4, 8, 16, 32), "default_bits", "one of 1, 2, 4, 8, 16, 32",
                self.default_bits)
        check_targets(self.hardware)
        if self.quantize is not None:
            config = quant_config(self.quantize, "quantize")
            require(config.act_bits != 32, "quantize.act_bits", "2..8 (the int8 parts run on quantized activations)",
                    config.act_bits)
        require(self.hardware is None or isinstance(self.hardware, str), "hardware", "null or one target name",
                self.hardware)


def check(cfg: Config, state: State) -> None:
    """Before any training: *little* fits the dataset's shape; the exit points exist in the model."""
    from edgeflow.stages._zoo_spec import spec_for_data

    if cfg.system == "big_little":
        spec_for_data(cfg.little, "little", state.input_shape, state.num_classes)
        return
    if cfg.system == "variable_width":
        from edgeflow.models.blueprint import blueprint_of

        steps = blueprint_of(state.model) or [{}]
        if len(steps) != 1 or steps[0].get("op") != "zoo" or steps[0].get("name") not in SLIMMABLE:
            raise ConfigError("system", f"variable_width needs a plain zoo model among {', '.join(SLIMMABLE)} "
                                        f"(not pruned or quantized), got {steps[0].get('name', 'another model')}"
                                        f"{' changed by ' + ', '.join(s['op'] for s in steps[1:]) if steps[1:] else ''}")
        return
    from edgeflow.methods.adaptive.system import EarlyExit

    try:
        system = EarlyExit.from_model(state.copy_model(), cfg.exits, state.num_classes, state.input_shape)
    except ValueError as err:
        raise ConfigError("exits", str(err)) from None
    if cfg.quantize is not None:
        from torch import nn

        for point, head in zip(system.exits, system.heads):
            if any(isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) for m in head.modules()):
                raise ConfigError("exits", f"exit point {point!r}: its feature map does not divide into the head's "
                                           "pooling bins (4 positions, 2 x 2); int8 heads (quantize) need equal "
                                           "windows")


def _big_little(cfg: Config, state: State, ctx: StageContext) -> tuple[Any, list, dict, dict]:
    from edgeflow.methods.adaptive import BigLittle
    from edgeflow.models.blueprint import blueprint_of
    from edgeflow.stages._zoo_spec import build_spec
    from edgeflow.training import fit

    little = build_spec(cfg.little, "little", state.input_shape, state.num_classes)
    with ctx.child("little") as sub:
        fit(little, sub, cfg)
    parts = [little, state.copy_model()]
    if cfg.quantize is not None:   # post-training int8 parts: calibration then sees int8 scores
        from edgeflow.methods.adaptive.int8 import CALIBRATION_BATCHES
        from edgeflow.methods.quantization import calibrate, freeze_observers, quantize_model

        parts = [quantize_model(p, state.input_shape, quant_config(cfg.quantize, "quantize")) for p in parts]
        for part in parts:
            calibrate(part, ctx.data.train_dataloader(), CALIBRATION_BATCHES)
            freeze_observers(part)
    return BigLittle(parts, cfg.measure), [blueprint_of(p) for p in parts], {}, {}


def _variable_width(cfg: Config, state: State, ctx: StageContext) -> tuple[Any, list, dict, dict]:
    from edgeflow.methods.adaptive import VariableWidth, width_loss
    from edgeflow.models.blueprint import blueprint_of
    from edgeflow.training import fit

    base = state.copy_model()
    zoo = blueprint_of(base)[0]
    system = VariableWidth(zoo["name"], state.input_shape, state.num_classes, zoo["options"], cfg.widths,
                           cfg.measure, source=base)   # the trained model's weights at every width
    fit(system, ctx, cfg, loss=width_loss)
    static = sum(sum(p.numel() for p in system.materialize(k).parameters()) for k in range(system.num_paths))
    metrics = {"params": float(sum(p.numel() for p in system.parameters())), "static_params": float(static)}
    extra = {"spec": system.spec, "widths": system.widths}
    if cfg.quantize is None:
        return system, [], extra, metrics
    from edgeflow.methods.adaptive.int8 import quantize_widths

    system = quantize_widths(system, state.input_shape, quant_config(cfg.quantize, "quantize"),
                             ctx.data.train_dataloader())
    return system, [blueprint_of(p) for p in system.parts], extra, metrics


def _early_exit(cfg: Config, state: State, ctx: StageContext) -> tuple[Any, list, dict, dict]:
    from edgeflow.methods.adaptive import EarlyExit, exit_loss
    from edgeflow.models.blueprint import blueprint_of
    from edgeflow.training import fit

    base = state.copy_model()
    source = blueprint_of(base)
    system = EarlyExit.from_model(base, cfg.exits, state.num_classes, state.input_shape, cfg.measure)
    system.segments.requires_grad_(cfg.train == "joint")
    fit(system, ctx, cfg, loss=exit_loss(cfg.exit_weights or [1.0] * system.num_paths, cfg.train == "heads"))
    system.segments.requires_grad_(True)
    extra = {"exits": system.exits, "num_classes": state.num_classes, "input_shape": list(state.input_shape)}
    if cfg.quantize is not None:
        from edgeflow.methods.adaptive.int8 import quantize_chain

        config = quant_config(cfg.quantize, "quantize")
        system = quantize_chain(system, state.input_shape, config, ctx.data.train_dataloader())
        extra["quantize"] = config.spec_dict()
    return system, [source], extra, {}


def _build(cfg: Config, state: State, ctx: StageContext) -> tuple[Any, dict[str, float]]:
    """The trained system of ``cfg.system``, carrying its calibration rule and its blueprint, and the
    metrics of its construction (variable width: ``params``, ``static_params``)."""
    from edgeflow.methods.adaptive.system import blueprint_step
    from edgeflow.models.blueprint import set_blueprint

    builder = {"big_little": _big_little, "variable_width": _variable_width, "early_exit": _early_exit}[cfg.system]
    system, parts, extra, metrics = builder(cfg, state, ctx)
    system.calibration = {"rule": cfg.rule or DEFAULT_RULE, "objective": cfg.objective}
    set_blueprint(system, [blueprint_step(system, parts, **extra)])
    return system, metrics


def _biggest_path(system: Any) -> Any:
    """A copy of the int8 system's biggest path alone, saveable (the pipeline's model after ``quantize``)."""
    import copy

    from edgeflow.methods.adaptive.system import Backbone
    from edgeflow.models.blueprint import blueprint_of, set_blueprint

    if hasattr(system, "parts"):
        return copy.deepcopy(system.parts[-1])
    backbone = Backbone(copy.deepcopy(system.segments))
    set_blueprint(backbone, [{**blueprint_of(system)[0], "backbone": True}])
    return backbone


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    import numpy as np

    from edgeflow.methods.adaptive import calibrate as cal
    from edgeflow.methods.adaptive.costs import path_costs
    from edgeflow.stages._adaptive_report import path_outputs, plot_curve
    from edgeflow.stages._common import float_reference, write_csv
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate

    check(cfg, state)
    state = float_reference(state, ctx)
    system, build_metrics = _build(cfg, state, ctx)
    costs, reference = path_costs(system, state.input_shape, ctx.target(cfg.hardware), cfg.default_bits)
    conf, pred, y = path_outputs(system, ctx.data.val_dataloader())        # calibration sees validation only
    candidates = cal.thresholds(conf, cfg.steps)
    val_curve = cal.sweep(conf, pred, y, costs, reference, candidates)
    big_val_acc = 100.0 * float(np.count_nonzero(pred[-1] == y)) / len(y)
    if cfg.theta is None:
        choice = cal.choose(val_curve, cfg.rule or DEFAULT_RULE, big_val_acc, cfg.objective)
    else:
        point = cal.evaluate_point(cfg.theta, conf, pred, y, costs, reference)
        choice = cal.Choice(point, True, f"theta fixed at {cfg.theta}")
    if not choice.met:
        log.warning("stage %s: %s", ctx.name, choice.message)   # the one line of an unsatisfiable rule
    theta = choice.point.theta
    system.set_threshold(theta)
    conf_t, pred_t, y_t = path_outputs(system, ctx.data.test_dataloader())  # the test split, θ fixed
    test_point = cal.evaluate_point(theta, conf_t, pred_t, y_t, costs, reference)
    test_curve = cal.sweep(conf_t, pred_t, y_t, costs, reference, candidates)
    big_test_acc = 100.0 * float(np.count_nonzero(pred_t[-1] == y_t)) / len(y_t)
    test_acc = evaluate(system, ctx)["test_acc"]
    names = system.path_names
    metrics = {
        "test_acc": test_acc, "big_test_acc": big_test_acc, "acc_drop": big_test_acc - test_acc,
        "val_acc": choice.point.acc, "big_val_acc": big_val_acc, "theta": theta, "rule_met": float(choice.met),
        "expected_energy_uj": test_point.expected["energy_uj"], "expected_latency_ms": test_point.expected["latency_ms"],
        "energy_ratio": test_point.ratio["energy_uj"], "latency_ratio": test_point.ratio["latency_ms"],
        "big_energy_uj": reference["energy_uj"], "big_latency_ms": reference["latency_ms"],
        **{f"share_{n}": s for n, s in zip(names, test_point.shares)}, **build_metrics,
    }
    rows = [{**v.row(names, "val_"), **{k: x for k, x in t.row(names, "test_").items() if k != "theta"}}
            for v, t in zip(val_curve, test_curve)]
    csv = write_csv(ctx.out_dir / "curve.csv", rows)
    png = plot_curve(val_curve, test_curve, choice.point, test_point, names, reference, cfg.objective,
                     ctx.out_dir / "curve.png", f"{system.system}, {cfg.measure}: {choice.message}")
    if cfg.quantize is not None:   # the int8 biggest path is the pipeline's model: export / profile deploy it too
        state = state.with_model(_biggest_path(system))
    return StageResult(state=state.with_model(system, ADAPTIVE), metrics=metrics,
                       artifacts={"curve_csv": csv, "curve_png": png})
