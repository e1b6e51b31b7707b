"""NAS without training: search spaces (every bundled space samples buildable zoo models, conditional
blocks), one-line config errors before any trial, Pareto front / knee / hypervolume on hand-checked
points, and the evolution and REINFORCE samplers on small known problems."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import optuna
import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

import edgeflow
from edgeflow.config import validate
from edgeflow.core.errors import ConfigError
from edgeflow.methods.nas import (RegularizedEvolutionSampler, ReinforceSampler, hypervolume, knee, pareto_front,
                                  parse)
from edgeflow.models import build_model

from conftest import BIN, ROOT

SPACES = ROOT / "conf" / "search_space"
SHAPES = {"tcn": (1, 40), "cnn": (1, 8, 8), "dscnn": (1, 49, 10), "mobilenet_v1": (3, 32, 32), "mlp": (1, 8, 8)}
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_space_samples_zoo_models(path: Path) -> None:
    space = parse(yaml.safe_load(path.read_text()))
    assert space.model in SHAPES and path.stem.startswith(space.model)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        options = space.sample(trial)
        model = build_model(space.model, SHAPES[space.model], 10, **options)
        assert sum(p.numel() for p in model.parameters()) > 0
        study.tell(trial, 0.0)


def test_blocks_are_conditional_on_depth() -> None:
    space = parse(yaml.safe_load((SPACES / "tcn.yaml").read_text()))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    depths = set()
    for _ in range(12):
        trial = study.ask()
        options = space.sample(trial)
        depth = trial.params["blocks.depth"]
        depths.add(depth)
        assert len(options["channels"]) == depth and options["kernel_size"] in (3, 5, 7, 9)
        assert sorted(k for k in trial.params if k.startswith("blocks.channels.")) == \
            [f"blocks.channels.{i}" for i in range(depth)]
        assert all(c % 4 == 0 and 4 <= c <= 32 for c in options["channels"])
        study.tell(trial, 0.0)
    assert len(depths) >= 3


def test_tcn_blocks_space_varies_the_kernel_per_block() -> None:
    import torch

    from edgeflow.models.schemas import TCNConfig

    space = parse(yaml.safe_load((SPACES / "tcn_blocks.yaml").read_text()))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    kernels = set()
    for _ in range(6):
        trial = study.ask()
        options = space.sample(trial)
        assert len(options["kernel_sizes"]) == len(options["channels"]) == trial.params["blocks.depth"]
        convs = [m for m in build_model("tcn", (1, 40), 10, **options).modules() if isinstance(m, torch.nn.Conv1d)]
        assert [c.kernel_size[0] for c in convs] == options["kernel_sizes"]
        assert [c.dilation[0] for c in convs] == [2 ** i for i in range(len(convs))]
        kernels.update(options["kernel_sizes"])
        study.tell(trial, 0.0)
    assert len(kernels) >= 2
    # explicit per-block lists equal to the defaults build the same model, weights included
    torch.manual_seed(0)
    default = build_model("tcn", (1, 40), 10)
    torch.manual_seed(0)
    explicit = build_model("tcn", (1, 40), 10, kernel_sizes=[5] * 4, dilations=[1, 2, 4, 8])
    assert str(default) == str(explicit)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), explicit.state_dict().values()))
    with pytest.raises(ConfigError, match="kernel_sizes"):
        TCNConfig(name="tcn", input_shape=[1, 40], num_classes=10, kernel_sizes=[3, 5])
    with pytest.raises(ConfigError, match="kernel_sizes"):
        TCNConfig(name="tcn", input_shape=[1, 40], num_classes=10, kernel_sizes=[3, 4, 5, 3])


def test_grid_lists_every_point_of_a_fixed_depth_space() -> None:
    space = parse({"model": "tcn", "choices": {
        "kernel_size": {"type": "categorical", "values": [3, 5]},
        "b": {"type": "blocks", "depth": {"type": "int", "low": 2, "high": 2},
              "each": {"channels": {"type": "int", "low": 8, "high": 16, "step": 8}}}}})
    assert space.grid_problem() is None
    assert space.grid() == {"kernel_size": [3, 5], "b.depth": [2], "b.channels.0": [8, 16], "b.channels.1": [8, 16]}
    assert "float range" in parse(yaml.safe_load((SPACES / "cnn.yaml").read_text())
                                  | {"choices": {"dropout": {"type": "float", "low": 0.0, "high": 0.5}}}).grid_problem()


BASE = ["recipe=nas_tcn_mnist1d"]


@pytest.fixture(scope="module")
def composed() -> DictConfig:
    return edgeflow.compose(BASE)


@pytest.mark.parametrize("path, value, key, words", [
    ("strategy", "annealing", "strategy", "one of random, tpe, nsga2, gp, cmaes, grid, evolution, rl"),
    ("space.choices.kernel_size.type", "set", "space.choices.kernel_size.type", "one of categorical"),
    ("space.choices.blocks.each.kernel_sizes.values", [], "space.choices.blocks.each.kernel_sizes.values",
     "non-empty list"),
    ("space.choices.depthwise", {"type": "int", "low": 1, "high": 2}, "space.choices.depthwise",
     "not an option of this model"),
    ("space.choices.blocks.each.channels.low", 40, "space.choices.blocks.each.channels.high", ">= low"),
    ("objectives", ["val_acc", "speed"], "objectives.1", "'speed' is not a metric"),
    ("objectives", [], "objectives", "non-empty list"),
    ("constraints", ["latency_ms << 5"], "constraints.0", "'fits' or '<cost> <= <number>'"),
    ("constraints", ["val_acc >= 90"], "constraints.0", "not a hardware cost"),
    ("constraints", ["watts <= 3"], "constraints.0", "not a hardware cost"),
    ("strategy", "evolution", "reward_target", "is required with 2 objectives"),
    ("pruner", "median", "pruner", "cannot prune multi-objective"),
    ("strategy", "cmaes", "strategy", "categorical choices"),
    ("strategy", "grid", "strategy", "depth varies"),
    ("select", "middle", "select", "one of best, knee"),
    ("select", {"max_acc_under": {"latency": 5}}, "select.max_acc_under.latency", "a cost among"),
    ("storage", "optuna.db", "storage", "an RDB URL"),
    ("space", None, "space", "is required"),
])
def test_bad_input_is_one_line_naming_the_key(composed: DictConfig, path: str, value: object, key: str,
                                              words: str) -> None:
    cfg = copy.deepcopy(composed)
    OmegaConf.update(cfg, f"stages.nas.{path}", value, merge=False, force_add=True)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert err.value.key == f"stages.nas.{key}" and words in message and "\n" not in message, message


def test_cli_rejects_a_bad_strategy_before_any_trial(tmp_path: Path) -> None:
    proc = subprocess.run([str(BIN / "edgeflow"), *BASE, "stages.nas.strategy=annealing"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={"EDGEFLOW_HOME": str(tmp_path),
                                                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "stages.nas.strategy" in lines[0], proc.stderr
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_front_knee_and_hypervolume_by_hand() -> None:
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (2, 2), (6, 6)]
    assert pareto_front(points) == [0, 1, 2]  # (3,3) and (6,6) dominated, the second (2,2) a repeat
    assert knee([(1, 5), (2, 2), (5, 1)]) == 1
    # staircase below (6, 6): 5·1 + 3·3 − ... = area of the union of [1,6]x[5,6], [2,6]x[2,6], [5,6]x[1,6]
    assert hypervolume([(1, 5), (2, 2), (5, 1)], (6, 6)) == pytest.approx(1 * 1 + 3 * 4 + 1 * 5)
    assert hypervolume([(1, 1, 1)], (2, 3, 4)) == pytest.approx(1 * 2 * 3)
    assert hypervolume([(7, 1)], (6, 6)) == 0.0


def _evolution_children(population: int) -> list[tuple[dict, list[dict]]]:
    """(child params, the population it was bred from) for every trial after the population filled."""
    space = {"a": list(range(6)), "b": list(range(6)), "c": list(range(6))}
    fitness = lambda t: t.user_attrs.get("fit")  # noqa: E731
    study = optuna.create_study(direction="maximize",
                                sampler=RegularizedEvolutionSampler(fitness, population, sample_size=2, seed=0))
    out = []
    for _ in range(30):
        before = [t.params for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))][-population:]
        trial = study.ask()
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        trial.set_user_attr("fit", float(sum(params.values())))
        study.tell(trial, float(sum(params.values())))
        if len(before) == population:
            out.append((params, before))
    return out


def test_evolution_mutates_exactly_one_choice_of_a_recent_member_and_improves() -> None:
    children = _evolution_children(population=5)
    assert len(children) == 25
    for params, population in children:
        assert any(sum(params[k] != p[k] for k in params) == 1 for p in population), (params, population)
    first, last = children[0][1], children[-1][1]
    assert sum(map(lambda p: sum(p.values()), last)) > sum(map(lambda p: sum(p.values()), first))


def test_reinforce_learns_the_rewarded_option() -> None:
    sampler = ReinforceSampler(lambda t: t.user_attrs.get("reward"), lr=0.3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(80):
        trial = study.ask()
        x = trial.suggest_categorical("op", ["conv", "pool", "skip", "none"])
        w = trial.suggest_float("width", 1.0, 64.0, log=True)
        reward = (1.0 if x == "pool" else 0.0) + w / 64
        trial.set_user_attr("reward", reward)
        study.tell(trial, reward)
    sampler.before_trial(study, study.ask())  # learn from the last trial too
    assert sampler.probabilities("op")["pool"] > 0.8
    widths = sampler.probabilities("width")
    assert max(widths, key=widths.get) > 32  # the highest-reward bins (log scale from 1 to 64)
