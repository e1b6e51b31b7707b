"""Lightning's overhead on the quickstart train stage: edgeflow's ``train`` stage (Lightning fit with
edgeflow's callbacks, per-epoch metrics into a real MLflow SQLite run) against a plain PyTorch loop
doing the same epochs (same model, data order, optimizer, cosine schedule, validation every epoch,
best weights kept), on scikit-learn's digits with one torch thread.

    .venv/bin/python benchmarks/lightning_overhead.py [--epochs 30] [--repeats 3] [--progress-bar]

Prints the best of ``--repeats`` wall times of each and their ratio. Figures measured on the 2-core
development machine are in the report note of issue 16 (noisy when other jobs share the cores).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path


def plain_loop(model, datamodule, epochs: int, lr: float) -> float:  # noqa: ANN001 - torch objects
    """Adam + cosine schedule, validation each epoch, best weights kept; returns the best val accuracy."""
    import torch
    from torch.nn import functional as F

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    best, best_state = -1.0, None
    train, val = datamodule.train_dataloader(), datamodule.val_dataloader()  # built once per fit, as Lightning does
    for _ in range(epochs):
        model.train()
        for x, y in train:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        sched.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in val:
                correct += int((model(x).argmax(1) == y).sum())
                total += len(y)
        if correct / total > best:
            best, best_state = correct / total, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return 100.0 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--progress-bar", action="store_true", help="Lightning's progress bar on (as the CLI default)")
    args = parser.parse_args()

    import pytorch_lightning as pl
    import torch

    import edgeflow
    from edgeflow.config import stage_module, validate
    from edgeflow.pipeline import prepare
    from edgeflow.state import StageContext
    from edgeflow.tracking.mlflow_run import MlflowRun

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = edgeflow.compose(["recipe=quickstart", f"stages.train.max_epochs={args.epochs}",
                                f"trainer.progress_bar={str(args.progress_bar).lower()}"])
        prepared = prepare(cfg)
        typed = validate(cfg)
        train_cfg = typed.stages["train"]
        tracker = MlflowRun.start(f"sqlite:///{Path(tmp) / 'mlflow.db'}", "bench", "bench", {})
        lightning, plain = [], []
        for i in range(args.repeats):
            ctx = StageContext(name="train", out_dir=Path(tmp) / f"run{i}", seed=0, tracker=tracker,
                               trainer_cfg=typed.trainer, data_source=lambda: prepared.datamodule,
                               hardware_source=lambda: None)
            ctx.out_dir.mkdir()
            pl.seed_everything(0, workers=True, verbose=False)
            started = time.perf_counter()
            result = stage_module("train").run(train_cfg, prepared.state, ctx)
            lightning.append(time.perf_counter() - started)
            pl.seed_everything(0, workers=True, verbose=False)
            model = prepared.state.copy_model()
            started = time.perf_counter()
            acc = plain_loop(model, prepared.datamodule, args.epochs, train_cfg.lr)
            plain.append(time.perf_counter() - started)
            print(f"repeat {i}: edgeflow train stage {lightning[-1]:.2f} s (best val_acc "
                  f"{result.metrics['best_val_acc']:.2f}), plain loop {plain[-1]:.2f} s (best val_acc {acc:.2f})")
        tracker.finish()
    print(f"best of {args.repeats}: edgeflow {min(lightning):.2f} s, plain {min(plain):.2f} s, "
          f"ratio {min(lightning) / min(plain):.2f}x")


if __name__ == "__main__":
    main()
