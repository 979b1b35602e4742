import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# the Slicer module folder: its Qt-free logic package (MREFibrosisLib) is tested with slicer-core
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "MREFibrosis"))

from fixtures import make_ge_exam, make_siemens_exam  # noqa: E402

# measured runtime choices (model/runtime_probe.py) are cached here, not in the user's home
os.environ.setdefault("MREFIBROSIS_CACHE", tempfile.mkdtemp(prefix="mrefibrosis-test-cache-"))


@pytest.fixture(scope="session")
def ge_exam(tmp_path_factory):
    return make_ge_exam(tmp_path_factory.mktemp("ge"))


@pytest.fixture(scope="session")
def siemens_exam(tmp_path_factory):
    return make_siemens_exam(tmp_path_factory.mktemp("siemens"))


@pytest.fixture(scope="session")
def simulated_ge_exam(tmp_path_factory):
    """One realistic simulated GE-style exam with its reader ROI and truth (seed 21), read-only:
    the result contract and the review page tests share it."""
    from mrefibrosis.synth.cohort import generate_cohort

    root = tmp_path_factory.mktemp("simulated_ge")
    generate_cohort(root, 1, seed=21, vendor="ge", stage_mix=None, workers=1)
    return root / "exam_00000"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(model file, exam folders): a small U-Net trained on a few synthetic exams (needs torch)."""
    pytest.importorskip("torch")
    from model_fixtures import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("tiny_slicer"), seed=1)


@pytest.fixture()
def scene():
    """A scene with the application and module logics Slicer would register (as trame-slicer does),
    bound as Slicer's globals by the Lib's own helper, as the review page binds its scene."""
    from MREFibrosisLib.standalone import bind_scene, restore, standalone_scene

    s, app, volumes, segmentations = standalone_scene()
    previous = bind_scene(s, volumes, segmentations)
    yield s
    restore(previous)
    s.Clear(1)
    del app
