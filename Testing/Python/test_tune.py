"""Optuna tuning: two pruned-or-complete trials, stored in SQLite, resumed by a second call."""

import json

import pytest

from mrefibrosis.synth.cohort import generate_cohort
from mrefibrosis.training.config import TrainConfig
from mrefibrosis.training.manifest import manifest_from_synthetic, read_manifest
from mrefibrosis.training.tune import SEARCH_SPACE, tune


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_cohort")
    generate_cohort(root, 4, seed=91, vendor="both", stage_mix=None, workers=1)
    return read_manifest(manifest_from_synthetic(root))


def test_two_trials_then_resume(rows, tmp_path):
    base = TrainConfig(
        architecture="unet_classic", base_channels=4, input_size=32, epochs=2, batch_size=4, micro_batch=4, max_steps_per_epoch=2, val_fraction=0.5, seed=3
    )
    best = tune(base, rows, tmp_path, n_trials=2, progress=False)
    assert best["completed_trials"] + best["pruned_trials"] == 2
    assert SEARCH_SPACE["lr"][0] <= best["params"]["lr"] <= SEARCH_SPACE["lr"][1]
    assert 0.80 <= best["params"]["momentum"] <= 0.99 and 0.0 <= best["params"]["weight_decay"] <= 0.01
    assert best["batch_size"] == 32 or best["batch_size"] == base.batch_size
    saved = json.loads((tmp_path / "best_params.json").read_text())
    assert saved["params"] == best["params"] and "--lr" in saved["train_command_options"]
    assert (tmp_path / "study.db").exists() and (tmp_path / "split.csv").exists()
    again = tune(base, rows, tmp_path, n_trials=1, progress=False)  # the same study goes on
    assert again["completed_trials"] + again["pruned_trials"] == 3
    assert len((tmp_path / "trials.csv").read_text().splitlines()) == 4
