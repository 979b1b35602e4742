"""The Qt panel (MREFibrosis.py) can only run inside Slicer, so it must stay wiring: these checks
read its source for the failures found by reading it against Slicer, CTK and PythonQt, and check
that every Lib call it makes exists (a rename in the Lib would otherwise first fail in Slicer)."""

import ast
import re
from pathlib import Path

from MREFibrosisLib import MREFibrosisLogic
from MREFibrosisLib.logic import SegmentJob
from MREFibrosisLib.process_runner import ProcessRunner, RunnerUpdate

MODULE_FILE = Path(__file__).resolve().parents[2] / "MREFibrosis" / "MREFibrosis.py"
SOURCE = MODULE_FILE.read_text()
TREE = ast.parse(SOURCE)


def _class(name):
    return next(n for n in TREE.body if isinstance(n, ast.ClassDef) and n.name == name)


def _method(cls, name):
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name)


def test_no_qprocess_no_bytes_of_qbytearray_no_subprocess():
    """QProcess output under PythonQt is a QByteArray (bytes() raises); PythonSlicer forwards no
    signal to its child: the widget leaves child processes to the Lib's runner."""
    assert "QProcess" not in SOURCE and "subprocess" not in SOURCE
    assert not re.search(r"\bbytes\(", SOURCE)
    assert "start_segment" in SOURCE and "runner.cancel()" in SOURCE


def test_parameter_node_registered_under_the_module_name():
    widget = _class("MREFibrosisWidget")
    body = ast.unparse(_method(widget, "initializeParameterNode"))
    assert "MREFibrosisLogic().getParameterNode()" in body and "ScriptedLoadableModuleLogic()" not in body
    logic = _class("MREFibrosisLogic")
    assert [ast.unparse(b) for b in logic.bases] == ["ScriptedLoadableModuleLogic"]


def test_finish_slot_resets_the_panel_whatever_happens():
    poll = ast.unparse(_method(_class("MREFibrosisWidget"), "_pollSegment"))
    assert "self._watch.tick(" in poll and "errorDisplay" not in poll and "tryWithErrorDisplay" not in poll
    ended = _method(_class("MREFibrosisWidget"), "_segmentEnded")
    tries = [n for n in ast.walk(ended) if isinstance(n, ast.Try) and n.finalbody]
    assert tries and any("_endJob" in ast.unparse(t.finalbody) for t in tries)
    cancel = _method(_class("MREFibrosisWidget"), "onCancel")
    assert any(isinstance(n, ast.Try) and "_endJob" in ast.unparse(n.finalbody) for n in ast.walk(cancel))


def test_compute_never_passes_the_validity_selector_and_export_always_asks_for_dicom():
    """The selector may hold another exam's validity map (it changes only on load); the Lib
    measures the exam's own. Export always asks: the Lib writes the files and says why DICOM was not."""
    compute = ast.unparse(_method(_class("MREFibrosisWidget"), "onCompute"))
    assert "validityVolume" not in compute
    export = ast.unparse(_method(_class("MREFibrosisWidget"), "onExport"))
    assert "dicom=True" in export and "SourceFolder" not in export


def test_every_action_slot_reports_errors():
    widget = _class("MREFibrosisWidget")
    for name in ("onLoadFolder", "onSegment", "onCompute", "onExport"):
        assert "tryWithErrorDisplay" in ast.unparse(_method(widget, name)), name


def test_self_test_installs_nothing():
    test = ast.unparse(_class("MREFibrosisTest"))
    assert "ensure_dependencies" not in test and "pip_install" not in test and "pip_ensure" not in test
    assert "missing_for" in test and "skipTest" in test


def test_widget_calls_only_what_the_lib_offers():
    calls = set(re.findall(r"(?:self\.logic|logic|self\._getLogic\([^)]*\))\.(\w+)\(", SOURCE))
    assert calls, "the widget calls the Lib"
    missing = {c for c in calls if not hasattr(MREFibrosisLogic, c)}
    assert missing == set(), missing
    for attr in set(re.findall(r"job\.runner\.(\w+)", SOURCE)):
        assert hasattr(ProcessRunner, attr) or attr in ProcessRunner("x").__dict__, attr
    for attr in set(re.findall(r"update\.(\w+)", SOURCE)):
        assert hasattr(RunnerUpdate, attr) or attr in RunnerUpdate.__dataclass_fields__, attr
    for attr in set(re.findall(r"\bjob\.(\w+)", SOURCE)) - {"runner"}:
        assert hasattr(SegmentJob, attr) or attr in SegmentJob.__dataclass_fields__, attr
    assert "identity" in SegmentJob.__dataclass_fields__


def test_panel_margin_defaults_and_range_are_the_engines():
    """The panel cannot import the engine before its packages are installed, so it writes the
    margins' defaults out; they must stay the engine's (RoiMargins) and its 0-100 mm range."""
    from mrefibrosis.model.margin_settings import RoiMargins

    fields = {n.target.id: n for n in _class("MREFibrosisParameterNode").body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    engine = RoiMargins()
    for name, default in (("roiEdgeMm", engine.liver_edge_mm), ("roiDriverMm", engine.driver_mm)):
        assert ast.literal_eval(fields[name].value) == default, name
        assert "WithinRange(0.0, 100.0)" in ast.unparse(fields[name].annotation), name
    onsegment = ast.unparse(_method(_class("MREFibrosisWidget"), "onSegment"))
    assert "panel_settings(p.modelPath, p.forceCpu, p.roiEdgeMm, p.roiDriverMm)" in onsegment and "start_segment(volume, settings)" in onsegment
