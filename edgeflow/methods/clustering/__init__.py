"""Weight clustering (weight sharing, Deep Compression) in plain PyTorch; no Hydra, MLflow or files.

* :mod:`.kmeans` - 1-D k-means with scikit-learn and the centroid initialisations (numpy only).
* :mod:`.sharing` - the ``weight_index`` / ``codebook`` buffers: cluster a layer or a model, tie
  gradients (centroid gradient = sum over its cluster), retie after a step, count distinct values.
* :mod:`.callback` - ``WeightSharing``, the Lightning callback every ``fit`` uses (imports Lightning).
* :mod:`.report` - per-layer storage of a (clustered, pruned, quantized) model in every format:
  float32 dense, executable flash, bytes at rest (Huffman included).

Names load their submodule on first access; the callback is imported from its module.
"""

from edgeflow.core.lazy import lazy_exports

_LAZY: dict[str, str] = {
    **dict.fromkeys(("INITS", "initial_centroids", "kmeans_1d"), "kmeans"),
    **dict.fromkeys(("CODEBOOK", "INDEX", "SCOPES", "ZERO_FLAG", "cluster_layer", "cluster_model", "clustered_layers",
                     "is_clustered", "remove_clustering", "retie", "shared_weight", "tie_gradients",
                     "unique_weights"), "sharing"),
    **dict.fromkeys(("compression_report",), "report"),
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
