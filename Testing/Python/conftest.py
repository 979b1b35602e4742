import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# the Slicer module folder: its Qt-free logic package (MREFibrosisLib) is tested with slicer-core
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "MREFibrosis"))

from fixtures import make_ge_exam, make_siemens_exam  # noqa: E402


@pytest.fixture(scope="session")
def ge_exam(tmp_path_factory):
    return make_ge_exam(tmp_path_factory.mktemp("ge"))


@pytest.fixture(scope="session")
def siemens_exam(tmp_path_factory):
    return make_siemens_exam(tmp_path_factory.mktemp("siemens"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(model file, exam folders): a small U-Net trained on a few synthetic exams (needs torch)."""
    pytest.importorskip("torch")
    from model_fixtures import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("tiny_slicer"), seed=1)


@pytest.fixture()
def scene(monkeypatch):
    """A scene with the application and module logics Slicer would register (as trame-slicer does)."""
    from types import SimpleNamespace

    import slicer

    s = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(s)
    app.GetColorLogic().SetMRMLScene(s)
    app.GetColorLogic().AddDefaultColorNodes()
    logics = {}
    for name, cls in (("volumes", slicer.vtkSlicerVolumesLogic), ("segmentations", slicer.vtkSlicerSegmentationsModuleLogic)):
        logic = cls()
        logic.SetMRMLApplicationLogic(app)
        logic.SetMRMLScene(s)
        app.SetModuleLogic(name.capitalize(), logic)
        logics[name] = SimpleNamespace(logic=lambda logic=logic: logic)
    # Slicer's array helpers use the global scene and module logics, as inside the application
    monkeypatch.setattr(slicer, "mrmlScene", s, raising=False)
    monkeypatch.setattr(slicer, "modules", SimpleNamespace(**logics), raising=False)
    yield s
    s.Clear(1)
