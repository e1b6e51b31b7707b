"""Pruning methods (plain PyTorch; no Hydra, MLflow or files).

* :mod:`.masks` - the ``weight_mask`` buffer convention, layer selection, sparsity reports.
* :mod:`.magnitude` - unstructured magnitude pruning, layer-wise or global.
* :mod:`.schedules` - constant / linear / polynomial / AGP / exponential sparsity schedules.
* :mod:`.callback` - the Lightning callback that runs a schedule during ``fit`` (imports Lightning).
* :mod:`.lottery` - snapshot and rewind (lottery tickets).
* :mod:`.nm` - N:M block-balanced sparsity.
* :mod:`.structured` - channel pruning with torch.fx dependency groups and real thinning.
* :mod:`.energy` - hardware-cost-aware per-layer sparsities and per-group channel ratios.
* :mod:`.iterative` - the loops around a ``train_fn``: schedules during a fit, prune/retrain cycles
  with rewinding, structured schedules with thinning between fits.
* :mod:`.storage` - per-layer bytes per storage format (via ``edgeflow.hardware.storage``).

The Lightning callback is not imported here (``from edgeflow.methods.pruning.callback import
PruningScheduleCallback``), so this package stays usable without Lightning. Names below load
their submodule on first access, so importing the package (or ``.schedules``) loads no torch.
"""

from edgeflow.core.lazy import lazy_exports

_LAZY: dict[str, str] = {
    **dict.fromkeys(("energy_aware_group_ratios", "energy_aware_layer_sparsities", "energy_aware_sparsities", "group_costs", "layer_costs"), "energy"),
    **dict.fromkeys(("iterative_magnitude", "magnitude_during_fit", "magnitude_pruner", "structured_schedule"), "iterative"),
    **dict.fromkeys(("rewind", "snapshot"), "lottery"),
    **dict.fromkeys(("magnitude_masks", "magnitude_prune"), "magnitude"),
    **dict.fromkeys(("MASK", "apply_masks", "get_mask", "global_sparsity", "layer_sparsity", "prunable_layers", "remove_masks", "set_mask", "set_masks", "sparsity_report"), "masks"),
    **dict.fromkeys(("check_nm", "nm_mask", "nm_prune"), "nm"),
    **dict.fromkeys(("SparsitySchedule", "cycle_sparsities"), "schedules"),
    **dict.fromkeys(("storage_table",), "storage"),
    **dict.fromkeys(("ChannelGroup", "bn_l1_penalty", "channel_groups", "channel_importance", "select_channels", "structured_prune", "thin", "zero_channels"), "structured"),
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "MASK", "ChannelGroup", "SparsitySchedule", "apply_masks", "bn_l1_penalty", "channel_groups",
    "channel_importance", "check_nm", "cycle_sparsities", "energy_aware_group_ratios",
    "energy_aware_layer_sparsities", "energy_aware_sparsities", "get_mask", "global_sparsity",
    "group_costs", "iterative_magnitude", "layer_costs", "layer_sparsity", "magnitude_during_fit",
    "magnitude_masks", "magnitude_prune", "magnitude_pruner", "nm_mask", "nm_prune",
    "prunable_layers", "remove_masks", "rewind", "select_channels", "set_mask", "set_masks",
    "snapshot", "sparsity_report", "storage_table", "structured_prune", "structured_schedule",
    "thin", "zero_channels",
]
