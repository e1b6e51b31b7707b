"""Clustering method in plain PyTorch: k-means initialisations, the index/codebook buffers, pruned
weights kept at zero, tied centroid gradients, and the clustered model through State save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeflow.methods import clustering as C
from edgeflow.methods.pruning import magnitude_prune
from edgeflow.models import build_model


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def test_initialisations() -> None:
    v = np.array([-1.0, 0.0, 0.5, 3.0])
    assert np.allclose(C.initial_centroids(v, 3, "linear"), [-1.0, 1.0, 3.0])
    assert np.allclose(C.initial_centroids(v, 2, "density"), [-1.0, 3.0])
    assert set(C.initial_centroids(v, 2, "random", seed=1)) <= set(v)
    assert C.initial_centroids(v, 2, "kmeans++") == "k-means++"
    with pytest.raises(ValueError):
        C.initial_centroids(v, 2, "bogus")


@pytest.mark.parametrize("init", C.INITS)
def test_kmeans_centroids_are_member_means(init: str) -> None:
    v = np.random.default_rng(0).normal(size=500)
    centroids, labels = C.kmeans_1d(v, 8, init)
    assert centroids.size <= 8 and np.all(np.diff(centroids) > 0)
    for j, c in enumerate(centroids):
        assert c == pytest.approx(v[labels == j].mean())


@pytest.mark.parametrize("scope", C.SCOPES)
def test_at_most_k_values_and_pruned_weights_stay_zero(scope: str) -> None:
    model = _model()
    magnitude_prune(model, 0.6, scope="layer")
    masks = {n: m.weight_mask.clone() for n, m in model.named_modules() if hasattr(m, "weight_mask")}
    C.cluster_model(model, 8, scope=scope)
    for name, m in C.clustered_layers(model).items():
        assert (m.weight[masks[name] == 0] == 0).all()
        assert (m.weight_index[masks[name] == 0] == 0).all() and m.cluster_zero
        assert torch.equal(m.weight, C.shared_weight(m))
        assert C.unique_weights(m, per_channel=scope == "channel") <= 8
        assert m.codebook.shape == ((1, 8) if scope == "layer" else (m.weight.shape[0], 8))


def test_tied_gradients_move_each_centroid_by_its_summed_gradient() -> None:
    model = _model()
    C.cluster_model(model, 4)
    layer = model[0]
    before = layer.codebook.clone()
    x, y = torch.randn(16, 2, 6, 6), torch.randint(0, 5, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    raw = layer.weight.grad.clone()
    C.tie_gradients(model)
    expected = torch.zeros(1, 4).scatter_add_(1, layer.weight_index.reshape(1, -1), raw.reshape(1, -1))
    lr = 0.1
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    assert C.unique_weights(layer) <= 4                                    # still tied, no retie needed
    C.retie(model)
    assert torch.allclose(layer.codebook, before - lr * expected, atol=1e-6)


def test_adam_keeps_weights_tied_without_retie() -> None:
    model = _model(1)
    magnitude_prune(model, 0.5)
    C.cluster_model(model, 4, scope="channel")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(8, 2, 6, 6)), torch.randint(0, 5, (8,))).backward()
        C.tie_gradients(model)
        opt.step()
        model[0].weight.data.mul_(model[0].weight_mask)
    for m in C.clustered_layers(model).values():
        assert C.unique_weights(m, per_channel=True) <= 4


def test_clustered_model_round_trips_through_state(tmp_path: Path) -> None:
    from edgeflow.methods.quantization.fold import fold_batchnorm
    from edgeflow.models import blueprint
    from edgeflow.state import State, model_version

    model = build_model("cnn", (1, 8, 8), 10)
    model.eval()
    assert fold_batchnorm(model)
    blueprint.record(model, {"op": "fold_bn"})
    magnitude_prune(model, 0.5)
    C.cluster_model(model, 16)
    state = State.of(model, (1, 8, 8), 10)
    state.save(tmp_path / "state")
    loaded = State.load(tmp_path / "state").model
    assert model_version(loaded) == model_version(model)
    for name, m in C.clustered_layers(model).items():
        other = loaded.get_submodule(name)
        assert torch.equal(other.weight_index, m.weight_index) and torch.equal(other.codebook, m.codebook)
        assert other.cluster_zero == m.cluster_zero
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(loaded.eval()(x), model(x))
