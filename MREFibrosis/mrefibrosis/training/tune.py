"""Optuna search over the seed paper's ranges, stored in SQLite so an interrupted study resumes.

Each trial is a full training run in its own folder with the study's fixed split, so trials are
compared on the same validation patients; trials whose validation Dice falls behind the median of
earlier trials at the same epoch are pruned.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from ..errors import MREFibrosisError
from ..results.staged_files import atomic_write_text
from .config import TrainConfig
from .manifest import ManifestRow
from .trainer import prepare_data, train

log = logging.getLogger("mrefibrosis")

# The seed paper's search space; batch size stays at 32.
SEARCH_SPACE = {"lr": (3e-6, 3e-2, "log"), "weight_decay": (0.0, 0.01, "uniform"), "momentum": (0.80, 0.99, "uniform")}


def suggest(trial, base: TrainConfig) -> TrainConfig:
    params = {}
    for name, (lo, hi, kind) in SEARCH_SPACE.items():
        params[name] = trial.suggest_float(name, lo, hi, log=kind == "log")
    return replace(base, **params)


def tune(base: TrainConfig, rows: list[ManifestRow], out_dir: str | os.PathLike, n_trials: int, study_name: str = "mrefibrosis", progress: bool = True) -> dict:
    try:
        import optuna
    except ImportError:
        raise MREFibrosisError("tuning needs Optuna; install it with: pip install 'mrefibrosis[train]'.") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base.validate()
    data = prepare_data(rows, base, out)  # one split (out/split.csv) shared by every trial
    # Heartbeats let a resumed study mark trials of a killed process as failed instead of running forever.
    storage = optuna.storages.RDBStorage(f"sqlite:///{(out / 'study.db').resolve()}", heartbeat_interval=30, grace_period=90)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )

    def objective(trial) -> float:
        config = suggest(trial, base)
        run = out / f"trial_{trial.number:04d}"

        def report(epoch: int, dice: float) -> None:
            trial.report(dice, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = train(config, rows, run, resume=(run / "checkpoint.pt").exists(), data=data, on_epoch=report, progress=progress)
        return result.best_dice

    if n_trials:
        study.optimize(objective, n_trials=n_trials, catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise MREFibrosisError("no tuning trial completed; run more --trials.")
    _write_trials(out / "trials.csv", study.trials)
    best = study.best_trial
    result = {
        "trial": best.number,
        "val_dice": best.value,
        "params": best.params,
        "batch_size": base.batch_size,
        "study": study_name,
        "storage": "study.db",
        "completed_trials": len(done),
        "pruned_trials": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "train_command_options": f"--lr {best.params['lr']:.6g} --momentum {best.params['momentum']:.6g} --weight-decay {best.params['weight_decay']:.6g}",
    }
    atomic_write_text(out / "best_params.json", json.dumps(result, indent=2) + "\n")
    return result


def _write_trials(path: Path, trials) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "state", "val_dice", "lr", "momentum", "weight_decay", "epochs_reported"])
    for t in trials:
        p = t.params
        w.writerow(
            [
                t.number,
                t.state.name,
                "" if t.value is None else f"{t.value:.5f}",
                p.get("lr", ""),
                p.get("momentum", ""),
                p.get("weight_decay", ""),
                len(t.intermediate_values),
            ]
        )
    atomic_write_text(path, buf.getvalue())
