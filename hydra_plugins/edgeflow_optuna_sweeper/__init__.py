"""edgeflow's Optuna sweeper for Hydra (``hydra/sweeper=optuna``), on current Optuna (the published
hydra-optuna-sweeper pins optuna < 3). Hydra finds it in the ``hydra_plugins`` namespace package;
``config`` registers its options, ``sweeper`` holds the plugin, ``space`` turns Hydra's sweep
syntax into Optuna distributions."""
