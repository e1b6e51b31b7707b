"""One-dimensional k-means of a layer's weights with scikit-learn, and the centroid initialisations
Deep Compression compares (Han et al., ICLR 2016, §3.2): ``linear`` (evenly spaced between the
minimum and maximum weight: their best), ``density`` (evenly spaced on the weights' CDF, i.e.
quantiles), ``random`` (Forgy: k weights drawn at random), and scikit-learn's ``kmeans++``.

Plain numpy + scikit-learn; no torch.
"""

from __future__ import annotations

import numpy as np

INITS = ("linear", "density", "random", "kmeans++")


def initial_centroids(values: np.ndarray, k: int, init: str, seed: int = 0) -> np.ndarray | str:
    """The ``k`` starting centroids of ``values`` (1-D) for ``init`` (``INITS``), or the string
    scikit-learn takes for ``kmeans++``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if init == "linear":
        return np.linspace(v.min(), v.max(), k)
    if init == "density":
        return np.quantile(v, np.linspace(0.0, 1.0, k))
    if init == "random":
        return np.random.default_rng(seed).choice(v, size=k, replace=False)
    if init == "kmeans++":
        return "k-means++"
    raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")


def kmeans_1d(values: np.ndarray, k: int, init: str = "linear", seed: int = 0,
              max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the 1-D ``values`` into at most ``k`` clusters.

    Returns ``(centroids, labels)``: ``centroids`` sorted ascending (float64, only clusters that
    hold a value), ``labels[i]`` the index of ``values[i]``'s centroid, each centroid the mean of its
    members (the k-means fixed point). With at most ``k`` distinct values every distinct value is
    its own centroid (exact, no k-means run). k-means is scikit-learn's ``KMeans`` (Lloyd, one
    initialisation, ``random_state=seed``).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    distinct = np.unique(v)
    if distinct.size <= k:
        return distinct, np.searchsorted(distinct, v).astype(np.int64)
    from sklearn.cluster import KMeans

    start = initial_centroids(v, k, init, seed)
    km = KMeans(n_clusters=k, init=start if isinstance(start, str) else start.reshape(-1, 1), n_init=1,
                max_iter=max_iter, random_state=seed, algorithm="lloyd")
    km.fit(v.reshape(-1, 1))
    centers = np.sort(km.cluster_centers_.reshape(-1))
    labels = np.abs(v[:, None] - centers[None, :]).argmin(axis=1)
    used = np.unique(labels)
    means = np.array([v[labels == j].mean() for j in used])
    order = np.argsort(means, kind="stable")
    remap = np.empty(used.max() + 1, dtype=np.int64)
    remap[used[order]] = np.arange(used.size)
    return means[order], remap[labels]


__all__ = ["INITS", "initial_centroids", "kmeans_1d"]
