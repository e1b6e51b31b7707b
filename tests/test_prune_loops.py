"""The pruning loops of ``edgeflow.methods.pruning.iterative`` and the energy-aware cost helpers, with
a fake trainer (no Lightning run, no data): exact targets, sparsities, rewinds and channel counts."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from edgeflow.methods import pruning as P
from edgeflow.methods.pruning.schedules import SparsitySchedule

N_WEIGHTS = 8 * 16 + 16 * 4  # the MLP below: 192 prunable weights


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class FakeTrainer:
    """A ``train_fn``: runs ``epochs`` epochs of a deterministic weight perturbation, calling each
    callback's hooks the way Lightning does (fit start, epoch start, batch end, validation end with
    ``val_acc = val[epoch]``) and re-applying masks like ``fit``. Records every call."""

    def __init__(self, epochs: int = 2, val: Sequence[float] = ()) -> None:
        self.epochs = epochs
        self.val = list(val) or [50.0] * epochs
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: nn.Module, callbacks: Sequence[Any] = ()) -> dict[str, float]:
        call = {"model": model, "entry": _state(model), "callbacks": list(callbacks),
                "epoch_start": [], "epoch_end": []}
        self.calls.append(call)
        trainer = SimpleNamespace(max_epochs=self.epochs, current_epoch=0, sanity_checking=False,
                                  callback_metrics={})
        for cb in callbacks:
            cb.on_fit_start(trainer, model)
        for e in range(self.epochs):
            trainer.current_epoch = e
            for cb in callbacks:
                cb.on_train_epoch_start(trainer, model)
            call["epoch_start"].append(_state(model))
            with torch.no_grad():
                for i, p in enumerate(model.parameters()):
                    p.add_(0.05 * torch.cos(torch.arange(p.numel(), dtype=p.dtype) * (e + 1) + i).view_as(p))
            P.apply_masks(model)
            for cb in callbacks:
                cb.on_train_batch_end(trainer, model, None, None, 0)
            trainer.callback_metrics = {"val_acc": torch.tensor(self.val[e])}
            for cb in callbacks:
                cb.on_validation_epoch_end(trainer, model)
            call["epoch_end"].append(_state(model))
        return {"best_val_acc": float(len(self.calls))}


def _masked(weights: dict[str, torch.Tensor], at: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` (masks left out) with every ``*.weight`` multiplied by the mask in the state ``at``."""
    return {k: v * at[k + "_mask"] if k + "_mask" in at else v
            for k, v in weights.items() if not k.endswith("_mask")}


def _assert_states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) <= set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- iterative cycles
def test_iterative_magnitude_prunes_each_cycle_target_then_trains_and_logs() -> None:
    model, trainer, logged = _mlp(), FakeTrainer(), []
    sched = SparsitySchedule("exponential", final=0.7, end=2, unit="cycle")
    history = P.iterative_magnitude(model, sched, P.magnitude_pruner(), trainer,
                                    measure=P.global_sparsity, log=lambda m, s: logged.append((m, s)))
    s1 = 1 - 0.3 ** 0.5
    assert [(h["t"], h["target"]) for h in history] == [(0, 0.0), (1, pytest.approx(s1)), (2, 0.7)]
    # round(s * 192) weights pruned: 0, round(86.84) = 87, round(134.4) = 134
    assert [h["sparsity"] for h in history] == [0.0, 87 / N_WEIGHTS, 134 / N_WEIGHTS]
    assert [P.global_sparsity(_load(c["entry"])) for c in trainer.calls] == [0.0, 87 / N_WEIGHTS,
                                                                            134 / N_WEIGHTS]
    assert logged == [
        ({"sparsity": 0.0, "target_sparsity": 0.0}, 0), ({"cycle_best_val_acc": 1.0}, 0),
        ({"sparsity": 87 / N_WEIGHTS, "target_sparsity": pytest.approx(s1)}, 1),
        ({"cycle_best_val_acc": 2.0}, 1),
        ({"sparsity": 134 / N_WEIGHTS, "target_sparsity": 0.7}, 2), ({"cycle_best_val_acc": 3.0}, 2),
    ]
    assert all(c["callbacks"] == [] for c in trainer.calls)
    # no rewind: each cycle continues from the previous cycle's trained weights (newly masked)
    _assert_states_equal(_masked(trainer.calls[0]["epoch_end"][-1], trainer.calls[1]["entry"]),
                         trainer.calls[1]["entry"])


def _load(state: dict[str, torch.Tensor]) -> nn.Module:
    """An MLP holding ``state`` (masks included)."""
    model = _mlp()
    P.set_masks(model, {k[: -len(".weight_mask")]: v for k, v in state.items() if k.endswith("_mask")})
    model.load_state_dict(state)
    return model


def test_rewind_to_init_restores_initial_weights_on_surviving_positions_and_keeps_masks() -> None:
    model, trainer = _mlp(), FakeTrainer()
    init = _state(model)
    sched = SparsitySchedule("exponential", final=0.7, end=2, unit="cycle")
    P.iterative_magnitude(model, sched, P.magnitude_pruner(), trainer, rewind="init")
    zeros = [0, 87, 134]
    for c, call in enumerate(trainer.calls):
        entry = call["entry"]
        masks = [v for k, v in entry.items() if k.endswith("_mask")]
        assert sum(int((m == 0).sum()) for m in masks) == zeros[c]
        _assert_states_equal(_masked(init, entry), entry)  # init weights x this cycle's masks
    # the masks are those magnitude pruning chose on the trained weights, not on the init ones
    pruned_on_trained = P.magnitude_masks(_load(trainer.calls[0]["epoch_end"][-1]), 87 / N_WEIGHTS,
                                          scope="global")
    for name, mask in pruned_on_trained.items():
        assert torch.equal(trainer.calls[1]["entry"][f"{name}.weight_mask"], mask)


def test_rewind_to_epoch_snapshot_of_the_first_fit() -> None:
    model, trainer = _mlp(), FakeTrainer(epochs=3)
    sched = SparsitySchedule("linear", final=0.5, initial=0.25, end=2, unit="cycle")
    history = P.iterative_magnitude(model, sched, P.magnitude_pruner(scope="layer"), trainer,
                                    rewind="epoch", rewind_epoch=1, measure=P.global_sparsity)
    # layer scope: round(s * 128) + round(s * 64) of 192 for s = 0.25, 0.375, 0.5
    assert [h["sparsity"] for h in history] == [48 / N_WEIGHTS, 72 / N_WEIGHTS, 96 / N_WEIGHTS]
    assert [len(c["callbacks"]) for c in trainer.calls] == [1, 0, 0]
    snap = {k: v for k, v in trainer.calls[0]["epoch_start"][1].items() if not k.endswith("_mask")}
    assert not torch.equal(snap["0.weight"], trainer.calls[0]["entry"]["0.weight"])
    for call in trainer.calls[1:]:
        _assert_states_equal(_masked(snap, call["entry"]), call["entry"])


def test_rewind_epoch_never_reached_tries_again_next_cycle() -> None:
    model, trainer = _mlp(), FakeTrainer(epochs=1)
    sched = SparsitySchedule("linear", final=0.5, end=1, unit="cycle")
    P.iterative_magnitude(model, sched, P.magnitude_pruner(), trainer, rewind="epoch", rewind_epoch=1)
    assert [len(c["callbacks"]) for c in trainer.calls] == [1, 1]
    assert [c["callbacks"][0].snapshot for c in trainer.calls] == [None, None]


def test_energy_aware_magnitude_pruner_prunes_the_costly_layer_more() -> None:
    model = _mlp()
    # costs 2:1, sizes 128:64, target 0.5: s_0 = l, s_2 = l/2, 128 l + 32 l = 96 -> l = 0.6
    prune_to = P.magnitude_pruner(costs={"0": 2.0, "2": 1.0})
    prune_to(model, 0.5)
    assert [int((P.get_mask(m) == 0).sum()) for m in P.prunable_layers(model).values()] == [77, 19]


# ----------------------------------------------------------------------------- during one fit
def test_magnitude_during_fit_prunes_at_epoch_events_and_keeps_best_epoch_at_final_sparsity() -> None:
    model, logged = _mlp(), []
    trainer = FakeTrainer(epochs=4, val=[90.0, 80.0, 70.0, 65.0])
    sched = SparsitySchedule("agp", final=0.8, end=2, unit="epoch")
    history = P.magnitude_during_fit(model, sched, P.magnitude_pruner(), trainer,
                                     measure=P.global_sparsity, log=lambda m, s: logged.append((m, s)))
    assert history == [{"t": 0, "target": 0.0}, {"t": 1, "target": pytest.approx(0.7)},
                       {"t": 2, "target": 0.8}]
    # round(0.7 * 192) = 134, round(0.8 * 192) = 154 (0.8 - 0.8 / 8 = 0.7 up to rounding)
    assert [m["sparsity"] for m, _ in logged] == [0.0, 134 / N_WEIGHTS, 154 / N_WEIGHTS]
    assert [s for _, s in logged] == [0, 1, 2]
    (call,) = trainer.calls
    assert [P.global_sparsity(_load(s)) for s in call["epoch_start"]] == [0.0, 134 / N_WEIGHTS,
                                                                         154 / N_WEIGHTS, 154 / N_WEIGHTS]
    # best val_acc at the final sparsity is epoch 2 (70), not epoch 0 (90, dense) nor the last one
    _assert_states_equal(call["epoch_end"][2], _state(model))
    assert not torch.equal(call["epoch_end"][3]["0.weight"], model[0].weight)


# ----------------------------------------------------------------------------- structured
def _widths(model: nn.Module) -> tuple[int, int, int]:
    return model[0].out_channels, model[3].out_channels, model[8].in_features


def test_structured_schedule_thins_to_hand_computed_channel_counts() -> None:
    model, ratios_seen, logged = _cnn(), [], []
    widths: list[tuple[int, int, int]] = []

    def train_fn(m: nn.Module, callbacks: Sequence[Any] = ()) -> dict[str, float]:
        widths.append(_widths(m))
        return {"best_val_acc": 0.0}

    def group_ratio_fn(m: nn.Module, ratio: float) -> dict[str, float]:
        ratios_seen.append((_widths(m), ratio))
        return {}

    sched = SparsitySchedule("linear", final=0.5, initial=0.25, end=2, unit="cycle")
    thin, groups, history = P.structured_schedule(
        model, (3, 8, 8), sched, train_fn, group_ratio_fn=group_ratio_fn,
        log=lambda m, s: logged.append((m, s)))
    # relative ratios 0.25, 1 - 0.625/0.75 = 1/6, 1 - 0.5/0.625 = 0.2 of the channels still there:
    # conv0 8 -> 6 -> 5 -> 4, conv1 16 -> 12 -> 10 -> 8
    assert widths == [(6, 12, 12), (5, 10, 10), (4, 8, 8)]
    assert _widths(thin) == (4, 8, 8) and _widths(model) == (8, 16, 16)
    assert [w for w, _ in ratios_seen] == [(8, 16, 16), (6, 12, 12), (5, 10, 10)]
    assert [r for _, r in ratios_seen] == pytest.approx([0.25, 1 / 6, 0.2], abs=1e-12)
    assert history == [{"t": 0, "target": 0.25}, {"t": 1, "target": 0.375}, {"t": 2, "target": 0.5}]
    assert logged == [({"channel_sparsity": 0.25}, 0), ({"channel_sparsity": 0.375}, 1),
                      ({"channel_sparsity": 0.5}, 2)]
    assert [(g["group"], g["channels"], g["kept"]) for g in groups if not g["blocked"]] == [
        ("0", 5, 4), ("3", 10, 8)]


def test_structured_schedule_trains_before_begin_and_skips_events_not_above_the_last() -> None:
    widths: list[tuple[int, int, int]] = []

    def train_fn(m: nn.Module, callbacks: Sequence[Any] = ()) -> dict[str, float]:
        widths.append(_widths(m))
        return {}

    sched = SparsitySchedule("constant", final=0.5, begin=1, end=2, unit="cycle")
    thin, groups, history = P.structured_schedule(_cnn(), (3, 8, 8), sched, train_fn, multiple=3)
    # 8 - 4 = 4 -> 6 (multiple of 3), 16 - 8 = 8 -> 9; the event at 2 (again 0.5) prunes nothing
    assert widths == [(8, 16, 16), (6, 9, 9), (6, 9, 9)]
    assert history == [{"t": 1, "target": 0.5}]
    assert [(g["channels"], g["kept"]) for g in groups if not g["blocked"]] == [(8, 6), (16, 9)]


# ----------------------------------------------------------------------------- energy costs
def _dw_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def test_group_costs_sum_producer_and_depthwise_layer_costs() -> None:
    from edgeflow.hardware import load

    model, shape, hw = _dw_cnn(), (3, 8, 8), load("cortex_m4")
    costs = P.layer_costs(model, shape, hw, "energy")
    assert set(costs) == {"0", "3", "6", "8", "10"} and all(c > 0 for c in costs.values())  # 8: pool
    groups = P.channel_groups(model, shape)
    assert [(g.producers, g.depthwise) for g in groups if g.prunable] == [(["0"], ["3"]), (["6"], [])]
    cost, size = P.group_costs(model, groups, costs)
    assert cost == {"0": costs["0"] + costs["3"], "6": costs["6"]}
    assert size == {"0": 8 * 3 * 9, "6": 16 * 8}
    latency = P.layer_costs(model, shape, hw, "latency")
    assert latency != costs and set(latency) == set(costs)
    ratios = P.energy_aware_group_ratios(model, 0.3, input_shape=shape, hardware=hw)
    assert ratios == P.energy_aware_sparsities(cost, size, 0.3)
    assert (ratios["0"] * size["0"] + ratios["6"] * size["6"]) / sum(size.values()) == pytest.approx(0.3)
