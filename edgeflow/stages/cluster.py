"""Stage ``cluster``: weight sharing (k-means per layer or per output channel), then centroid fine-tuning.

A thin adapter over ``edgeflow.methods.clustering``: BatchNorm is folded into the layer it follows
(exact; recorded in the blueprint), so the codebook holds the deployed weights and a later QAT folds
nothing more; each selected Conv/Linear is clustered into ``k`` shared values (``k = 2^bits``, or
``clusters``; Linear layers ``2^linear_bits`` when set), pruned weights staying zero (zero is one of
the ``k`` values); then ``fit`` fine-tunes the centroids (each the sum of its weights' gradients,
masks held). The model keeps ``weight_index`` / ``codebook`` buffers, so every later fit keeps the
weights tied and later stages read them.

Metrics: ``test_acc``, ``test_loss``, ``acc_drop`` (vs the float reference), ``clustered_acc``
(before fine-tuning), ``unique_weights`` (distinct values summed over the clustered layers, zero
included), ``max_unique_weights`` (the most in one layer), ``float32_bytes``, ``bytes_at_rest``,
``flash_bytes``, ``size_ratio`` (float32 dense / bytes at rest), ``flash_ratio``, ``best_val_acc``,
``epochs``. Artifact ``layers.csv``: every layer in every storage format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgeflow.core.errors import ConfigError, require, require_choice
from edgeflow.hardware.storage import MAX_CODEBOOK as MAX_CLUSTERS
from edgeflow.methods.clustering.kmeans import INITS
from edgeflow.training.schema import TrainingStageConfig

if TYPE_CHECKING:
    from torch import nn

    from edgeflow.state import State, StageContext, StageResult

SCOPES = ("layer", "channel")   # = edgeflow.methods.clustering.SCOPES (that module imports torch)


@dataclass
class Config(TrainingStageConfig):
    """Options of the cluster stage (fine-tuning options: see ``TrainingStageConfig``)."""

    max_epochs: int = 5
    lr: float = 0.001
    bits: int = 4                      # k = 2^bits shared values per layer / channel (1..8)
    clusters: int | None = None        # k directly (2..256); overrides bits
    linear_bits: int | None = None     # Linear layers: k = 2^linear_bits (Han: conv 8, fc 5); null = as conv
    init: str = "linear"               # linear | density | random | kmeans++
    scope: str = "layer"               # layer | channel: one codebook per layer or per output channel
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.bits, int) and 1 <= self.bits <= 8, "bits",
                "an integer in [1, 8] (2 to 256 clusters)", self.bits)
        if self.clusters is not None:
            require(isinstance(self.clusters, int) and 2 <= self.clusters <= MAX_CLUSTERS, "clusters",
                    f"an integer in [2, {MAX_CLUSTERS}] or null", self.clusters)
        if self.linear_bits is not None:
            require(isinstance(self.linear_bits, int) and 1 <= self.linear_bits <= 8, "linear_bits",
                    "an integer in [1, 8] or null", self.linear_bits)
        require_choice(self.init, "init", INITS)
        require_choice(self.scope, "scope", SCOPES)
        require(all(isinstance(p, str) and p for p in self.exclude), "exclude",
                "a list of module-name glob patterns", self.exclude)

    def clusters_for(self, module: nn.Module) -> int:
        """``k`` for a layer: ``2^linear_bits`` for Linear when set, else ``clusters`` or ``2^bits``."""
        from torch import nn

        if self.linear_bits is not None and isinstance(module, nn.Linear):
            return 2 ** self.linear_bits
        return self.clusters if self.clusters is not None else 2 ** self.bits

    def key_for(self, module: nn.Module) -> str:
        """The config key that set ``module``'s ``k`` (for error messages)."""
        from torch import nn

        if self.linear_bits is not None and isinstance(module, nn.Linear):
            return "linear_bits"
        return "clusters" if self.clusters is not None else "bits"


def check(cfg: Config, state: State) -> None:
    """Before any training: every ``exclude`` pattern selects a layer, no clustered layer (or, with
    ``scope: channel``, output channel) has fewer weights than clusters, and none still simulates
    BatchNorm (its later folding would scale each channel's shared values apart)."""
    from edgeflow.methods.pruning.masks import matches, prunable_layers
    from edgeflow.stages._patterns import require_matches

    require_matches("exclude", cfg.exclude, state.model, lambda name, pattern: matches(name, [pattern]))
    for name, module in prunable_layers(state.model, cfg.exclude).items():
        k = cfg.clusters_for(module)
        w = module.weight
        n = w.numel() if cfg.scope == "layer" else w[0].numel()
        if k > n:
            where = "layer" if cfg.scope == "layer" else "output channel of"
            raise ConfigError(cfg.key_for(module), f"{k} clusters exceed the {n} weights per {where} {name!r}; "
                                                  f"use fewer clusters or exclude it")
        if getattr(module, "bn", None) is not None:  # QAT bn=simulate: folding later would scale each channel
            raise ConfigError("exclude", f"layer {name!r} still simulates BatchNorm (qat bn: simulate); cluster "
                                         f"after a QAT with bn: fold, or exclude it")


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from edgeflow.methods import clustering as C
    from edgeflow.methods.pruning.masks import apply_masks, prunable_layers
    from edgeflow.methods.quantization.fold import fold_batchnorm
    from edgeflow.models import blueprint
    from edgeflow.stages._common import float_reference, write_csv
    from edgeflow.state import StageResult
    from edgeflow.training import evaluate, fit

    check(cfg, state)
    state = float_reference(state, ctx)
    model = state.copy_model()
    if fold_batchnorm(model):
        blueprint.record(model, {"op": "fold_bn"})
    layers = prunable_layers(model, cfg.exclude)
    apply_masks(model)
    C.cluster_model(model, {name: cfg.clusters_for(m) for name, m in layers.items()}, cfg.init, cfg.scope,
                    seed=ctx.seed)
    clustered_acc = evaluate(model, ctx)["test_acc"]
    metrics = dict(fit(model, ctx, cfg))
    test = evaluate(model, ctx)
    rows, totals = C.compression_report(model, state.input_shape, ctx.hardware_option("sparse_formats"))
    unique = [C.unique_weights(m, per_channel=cfg.scope == "channel") for m in layers.values()]
    metrics.update(totals)
    metrics.update({
        "test_acc": test["test_acc"], "test_loss": test["test_loss"], "clustered_acc": clustered_acc,
        "acc_drop": state.reference_metrics["test_acc"] - test["test_acc"],
        "unique_weights": float(sum(unique)), "max_unique_weights": float(max(unique, default=0)),
    })
    path = write_csv(ctx.out_dir / "layers.csv", rows)
    return StageResult(state=state.with_model(model), metrics=metrics, artifacts={"layers": path})
