"""Stage ``dnas``: differentiable architecture search on the model, export, fine-tuning.

``method``: ``pit`` (channel masks on every prunable channel group, and with ``search_kernel`` /
``search_dilation`` receptive-field and dilation masks on Conv1d), ``mps`` (per-layer weight and
activation bit-widths over the fake-quant modules) or ``supernet`` (choice blocks: kernel sizes and
identity per conv-BN-ReLU block, with a temperature schedule). The search trains weights and
architecture together (``edgeflow.methods.dnas.search``: separate optimisers, ``weight_lr`` and
``arch_lr``; ``warmup_epochs`` without regulariser first), regularised by ``strength · cost /
cost₀`` on one soft cost of the run's target and by DUCCIO ``targets`` (penalty above each target,
ramped over the first half of the search). The exported model
(plain, thinner, or quantized at the chosen bits; recorded as blueprint steps) is fine-tuned with
``fit`` (``max_epochs``, ``lr``, ...) and goes on to the next stages.

Metrics: per epoch ``val_acc``, ``train_loss``, ``reg_loss``, ``cost_<metric>`` (soft costs);
final ``params_before``, ``params``, ``params_ratio`` (before / after), ``macs_before``, ``macs``,
``search_acc`` (test accuracy right after export), ``test_acc``, ``acc_drop``, ``cost_<metric>`` at
the found architecture and ``latency_ms``, ``energy_uj``, ``flash_bytes`` of the exported model
(``analyze`` + estimate, ``default_bits``). Artifacts ``architecture.csv`` / ``.png``, ``search.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import MAX_EPOCHS, ConfigError, require, require_choice, require_finite
from edgeflow.methods.dnas.spec import COSTS, METHODS, SAMPLINGS
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from edgeflow.state import State, StageContext, StageResult


@dataclass
class Config(TrainingStageConfig):
    """Options of the dnas stage (README "Differentiable NAS"); fine-tuning: ``TrainingStageConfig``."""

    max_epochs: int = 10
    lr: float = 0.001
    method: str = "pit"                 # pit | mps | supernet
    search_channels: bool = True        # pit: output-channel masks on every prunable channel group
    search_kernel: bool = False         # pit: receptive-field masks on 'same'-padded stride-1 Conv1d
    search_dilation: bool = False       # pit: dilation masks on the same Conv1d layers
    exclude: list[str] = field(default_factory=list)   # pit: producers whose channels stay whole
    min_channels: int = 1               # pit: channels every group keeps at least (the largest |θ|)
    cost: str | None = "params"         # soft cost of strength·cost/cost0: params | macs | flash_bytes | latency_ms | energy_uj
    strength: float = 1.0               # >= 0; 0 = no cost term
    targets: dict[str, float] = field(default_factory=dict)   # DUCCIO: {latency_ms: 2, flash_bytes: 20000}
    target_strength: float = 10.0       # penalty target_strength·max(0, cost/target - 1) per target
    default_bits: int = 8               # pit: bits the cost assumes for layers without quantizers
    weight_bits: list[int] = field(default_factory=lambda: [2, 4, 8])   # mps: weight bit-width candidates, 1..8
    act_bits: list[int] = field(default_factory=lambda: [4, 8])         # mps: activation candidates, 2..8
    calib_batches: int = 8              # mps: training batches that set the candidates' activation ranges
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 5, 7])   # supernet: kernel candidates (odd)
    identity: bool = True               # supernet: an identity candidate where a block keeps its shape (depth)
    sampling: str = "softmax"           # supernet: softmax | gumbel | hard (straight-through one-hot)
    temperature: float = 1.0            # supernet: softmax / Gumbel temperature at the first search epoch
    final_temperature: float = 0.1      # supernet: ... at the last (exponential schedule)
    search_epochs: int = 20
    warmup_epochs: int = 5              # weights only, no regulariser, before the search
    weight_lr: float = 0.001            # weights' Adam learning rate during warm-up and search
    arch_lr: float = 0.01               # architecture parameters' learning rate
    arch_optimizer: str = "adam"        # adam | sgd (momentum 0.9) for the architecture parameters

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice(self.method, "method", METHODS)
        require(bool(self.kernel_sizes) and all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 31
                                                 and k % 2 == 1 for k in self.kernel_sizes),
                "kernel_sizes", "a non-empty list of odd integers in 1..31", self.kernel_sizes)
        require_choice(self.sampling, "sampling", SAMPLINGS)
        for key in ("temperature", "final_temperature"):
            require_finite(getattr(self, key), key, "a finite float in (0, 100]", 0 < getattr(self, key) <= 100)
        if self.cost is not None:
            require_choice(self.cost, "cost", COSTS)
        require_finite(self.strength, "strength", "a finite float >= 0", self.strength >= 0)
        for key, value in self.targets.items():
            if key not in COSTS:
                raise ConfigError(f"targets.{key}", f"is not a soft cost of the hardware model; allowed: {', '.join(COSTS)}")
            require_finite(value, f"targets.{key}", "a finite number > 0", value > 0)
        require_finite(self.target_strength, "target_strength", "a finite float >= 0", self.target_strength >= 0)
        for key, lo in (("weight_bits", 1), ("act_bits", 2)):
            bits = getattr(self, key)
            require(bool(bits) and all(isinstance(b, int) and not isinstance(b, bool) and lo <= b <= 8 for b in bits),
                    key, f"a non-empty list of integers in {lo}..8", bits)
        if self.method == "mps" and self.cost in ("params", "macs"):
            raise ConfigError("cost", f"{self.cost} does not depend on bit-widths; with method mps use "
                                      "flash_bytes, latency_ms, energy_uj or null")
        require(isinstance(self.min_channels, int) and 1 <= self.min_channels <= 65536, "min_channels",
                "an integer in [1, 65536]", self.min_channels)
        require(1 <= self.calib_batches <= 100_000, "calib_batches", "an integer in [1, 100000]", self.calib_batches)
        require(self.default_bits in (1, 2, 4, 8, 16, 32), "default_bits", "one of 1, 2, 4, 8, 16, 32", self.default_bits)
        require(1 <= self.search_epochs <= MAX_EPOCHS, "search_epochs", f"an integer in [1, {MAX_EPOCHS}]",
                self.search_epochs)
        require(0 <= self.warmup_epochs <= MAX_EPOCHS, "warmup_epochs", f"an integer in [0, {MAX_EPOCHS}]",
                self.warmup_epochs)
        require_choice(self.arch_optimizer, "arch_optimizer", ("adam", "sgd"))
        for key in ("weight_lr", "arch_lr"):
            require_finite(getattr(self, key), key, "a finite float in (0, 10]", 0 < getattr(self, key) <= 10)
        require(self.search_channels or self.search_kernel or self.search_dilation, "search_channels",
                "true when search_kernel and search_dilation are false (nothing to search)", self.search_channels)
        require(all(isinstance(p, str) and p for p in self.exclude), "exclude", "a list of module-name glob patterns",
                self.exclude)


def check(cfg: Config, state: State) -> None:
    """Before any training: ``exclude`` patterns select layers; kernel / dilation search has a
    "same"-padded, stride-1 float Conv1d with an odd kernel ≥ 3 to act on."""
    from edgeflow.methods.dnas import time_searchable
    from edgeflow.methods.pruning.masks import matches
    from edgeflow.stages._patterns import require_matches, shortened

    require_matches("exclude", cfg.exclude, state.model, lambda name, pattern: matches(name, [pattern]))
    if cfg.method == "mps":
        from edgeflow.methods.quantization import is_quantized

        if is_quantized(state.model):
            raise ConfigError("method", "mps searches the bit-widths of a float model; this one is quantized "
                                        "already (ptq/qat ran before): put dnas before them")
    elif cfg.method == "supernet":
        from edgeflow.methods.dnas import choice_blocks

        if not choice_blocks(state.model, state.input_shape):
            raise ConfigError("method", "supernet needs conv -> BatchNorm -> ReLU blocks (an nn.Sequential starting "
                                        "with a stride-1, 'same'-padded conv with an odd kernel); the model has none")
    elif cfg.search_kernel or cfg.search_dilation:
        if not any(time_searchable(m) for m in state.model.modules()):
            from torch import nn

            convs = [n for n, m in state.model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
            key = "search_dilation" if cfg.search_dilation else "search_kernel"
            raise ConfigError(key, "applies to 'same'-padded, stride-1 float Conv1d layers with an odd kernel >= 3; "
                                   f"the model has none (its convs: {shortened(convs) if convs else 'none'})")


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    import torch

    from edgeflow.hardware import analyze
    from edgeflow.methods.dnas import Regularizer, search
    from edgeflow.stages._common import float_reference, write_csv
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate, fit

    check(cfg, state)
    state = float_reference(state, ctx)
    torch.manual_seed(ctx.seed)
    shape, hw = state.input_shape, ctx.hardware
    net = _supernet(cfg, state, ctx)
    reg = Regularizer(cfg.cost, cfg.strength, dict(cfg.targets), cfg.target_strength, ramp_epochs=cfg.search_epochs // 2)
    rows = search(net, ctx.data.train_dataloader(), ctx.data.val_dataloader(), hw, reg, epochs=cfg.search_epochs,
                  warmup_epochs=cfg.warmup_epochs, weight_lr=cfg.weight_lr, arch_lr=cfg.arch_lr,
                  arch_optimizer=cfg.arch_optimizer, on_epoch=lambda e, row: ctx.log_metrics(_named(row), step=e),
                  before_epoch=_temperature(cfg, net))
    with torch.no_grad():
        found = {k: float(v) for k, v in net.soft_cost(hw).items()}
    model = net.export().train()
    search_acc = evaluate(model, ctx)["test_acc"]
    metrics: dict[str, float] = dict(fit(model, ctx, cfg))
    test = evaluate(model, ctx)
    before, after = analyze(state.model, shape, cfg.default_bits), analyze(model, shape, cfg.default_bits)
    est = hw.estimate(after, warn=False)
    metrics.update({
        "params_before": float(before.params), "params": float(after.params),
        "params_ratio": before.params / max(1, after.params), "macs_before": float(before.macs),
        "macs": float(after.macs), "weight_bytes_before": float(before.weight_bytes),
        "weight_bytes": float(after.weight_bytes), "weight_bits": _mean_bits(analyze(model, shape)),
        "search_acc": search_acc, "test_acc": test["test_acc"], "test_loss": test["test_loss"],
        "acc_drop": state.reference_metrics["test_acc"] - test["test_acc"],
        "latency_ms": est.latency_ms, "energy_uj": est.energy_uj, "flash_bytes": float(est.flash_bytes),
        **{f"cost_{k}": v for k, v in found.items()},
    })
    arch = net.architecture()
    title = (f"{cfg.method}: params {before.params:,} -> {after.params:,}, {hw.name} {est.latency_ms:.3g} ms, "
             f"test {test['test_acc']:.2f} %")
    artifacts = {"architecture": write_csv(ctx.out_dir / "architecture.csv", arch),
                 "architecture_png": _figure(arch, title, ctx.out_dir / "architecture.png"),
                 "search": write_csv(ctx.out_dir / "search.csv", rows)}
    return StageResult(state=state.with_model(model), metrics=metrics, artifacts=artifacts)


def _supernet(cfg: Config, state: State, ctx: StageContext) -> Any:
    """The method's supernet around (a copy of) the state's model; mps calibrates its candidates."""
    from edgeflow.methods.dnas import PIT, ChoiceSupernet, MixedPrecision
    from edgeflow.methods.pruning.masks import matches

    shape = state.input_shape
    if cfg.method == "pit":
        return PIT(state.model, shape, search_channels=cfg.search_channels, search_kernel=cfg.search_kernel,
                   search_dilation=cfg.search_dilation, exclude=lambda name: matches(name, cfg.exclude),
                   default_bits=cfg.default_bits, min_channels=cfg.min_channels)
    if cfg.method == "mps":
        net = MixedPrecision(state.model, shape, cfg.weight_bits, cfg.act_bits)
        net.calibrate(ctx.data.train_dataloader(), cfg.calib_batches)
        return net
    return ChoiceSupernet(state.model, shape, cfg.kernel_sizes, cfg.identity, cfg.sampling, cfg.default_bits)


def _figure(rows: list[dict[str, Any]], title: str, path: Any) -> Any:
    """``architecture_figure`` saved to ``path`` (returned)."""
    import matplotlib.pyplot as plt

    from edgeflow.methods.dnas.report import architecture_figure

    fig = architecture_figure(rows, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _named(row: dict[str, Any]) -> dict[str, float]:
    """Per-epoch metric names: soft costs as ``cost_<metric>``."""
    plain = ("val_acc", "train_loss", "reg_loss")
    return {(k if k in plain else f"cost_{k}"): float(v) for k, v in row.items() if k not in ("epoch", "phase")}


def _mean_bits(cost: Any) -> float:
    """Mean bits per weight over the Conv/Linear layers, weighted by their weight counts (a float
    layer counts 32: the run's closing table labels the model float, int8 or mixed from it)."""
    total = sum(layer.weights for layer in cost.layers)
    return sum(layer.weights * layer.weight_bits for layer in cost.layers) / max(1, total)


def _temperature(cfg: Config, net: Any) -> Any:
    """The supernet's temperature schedule: ``temperature · (final/temperature)^(e/(E−1))`` over the
    search epochs (warm-up epochs at ``temperature``); None for the other methods."""
    if cfg.method != "supernet":
        return None

    def set_for(epoch: int) -> None:
        e = max(0, epoch - cfg.warmup_epochs)
        share = e / max(1, cfg.search_epochs - 1)
        net.set_temperature(cfg.temperature * (cfg.final_temperature / cfg.temperature) ** share)
    return set_for
