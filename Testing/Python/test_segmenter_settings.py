"""One `SegmenterSettings` for every front end: validated once, Enums resolved at the boundary, and
each front end's own form (argv, service JSON, the Slicer panel's fields) a method of that one class,
so the settings a front end holds are the settings its segmenter (or child process) gets."""

import ast
import json
from pathlib import Path

import pytest

from mrefibrosis.cli import build_parser
from mrefibrosis.model.margin_settings import RoiMargins
from mrefibrosis.model.segmenter_settings import JSON_KEYS, Precision, Runtime, SegmenterSettings, SettingsError
from mrefibrosis.pacs.receiver import ReceiverConfig
from mrefibrosis.pacs.worker import WorkerConfig

MODULE = Path(__file__).resolve().parents[2] / "MREFibrosis"
SHA = "ab" * 32
FULL = SegmenterSettings(model="site.mrefmodel", model_sha256=SHA, device="cuda:1", runtime="torch", precision="bf16", tta=True, margins=RoiMargins(7.5, 30.0))


def _parsed(*argv):
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    "command",
    [
        ["measure", "STUDY", "--out", "o"],
        ["segment", "STUDY", "--out", "o"],
        ["review", "STUDY"],
        ["batch", "IN", "--out", "o"],
        ["evaluate", "M.csv", "--out", "o"],
    ],
)
def test_every_segmenting_command_takes_every_setting_and_argv_round_trips(command):
    settings = SegmenterSettings.from_args(_parsed(*command, *FULL.to_argv()))
    assert settings == FULL
    assert SegmenterSettings.from_args(_parsed(*command)) == SegmenterSettings()


def test_enums_are_resolved_at_the_boundary():
    s = SegmenterSettings(runtime="ONNX", precision="FP32", device="CPU", model_sha256=SHA.upper())
    assert s.runtime is Runtime.ONNX and s.precision is Precision.FP32 and s.device == "cpu" and s.model_sha256 == SHA
    for bad, message in (
        (dict(runtime="tensorrt"), "runtime 'tensorrt' is not one of auto, torch, onnx"),
        (dict(precision="int4"), "precision 'int4'"),
        (dict(device="gpu0"), "device 'gpu0'"),
        (dict(model_sha256="123"), "64 hex digits"),
        (dict(tta="yes"), "tta must be true or false"),
    ):
        with pytest.raises(SettingsError, match=message) as err:
            SegmenterSettings(**bad)
        assert "\n" not in str(err.value)


def test_json_round_trips_and_refuses_unknown_keys():
    assert SegmenterSettings.from_json(json.loads(json.dumps(FULL.to_json()))) == FULL
    assert set(FULL.to_json()) == set(JSON_KEYS)
    assert SegmenterSettings.from_json({}) == SegmenterSettings()
    with pytest.raises(SettingsError, match="unknown keys modle"):
        SegmenterSettings.from_json({"modle": "x"})
    with pytest.raises(SettingsError, match="roi_margins_mm"):
        SegmenterSettings.from_json({"roi_margins_mm": {"liver_edge_mm": 500}})


def test_panel_form():
    assert SegmenterSettings.from_panel(".", False, 10, 25) == SegmenterSettings()
    assert SegmenterSettings.from_panel("", True, 0, 0) == SegmenterSettings(device="cpu", margins=RoiMargins(0, 0))
    assert SegmenterSettings.from_panel(Path("/m/site.mrefmodel"), False, 10, 25).model == "/m/site.mrefmodel"
    with pytest.raises(SettingsError, match="ROI margin"):
        SegmenterSettings.from_panel(None, False, 150, 25)


def test_loaded_key_ignores_only_the_margins():
    assert FULL.loaded_key() == FULL.with_margins(RoiMargins(0, 0)).loaded_key()
    assert FULL.loaded_key() != SegmenterSettings(model="site.mrefmodel").loaded_key()


@pytest.mark.parametrize("config", [WorkerConfig, ReceiverConfig])
def test_both_services_take_every_setting_from_one_base(config, tmp_path):
    """The receiver used to ignore model_sha256, runtime and precision; both configs now share one base."""
    path = tmp_path / "config.json"
    body = {k: v for k, v in FULL.to_json().items()}
    if config is ReceiverConfig:
        body["allowed_calling_aes"] = ["MR1"]
    path.write_text(json.dumps(body))
    assert config.load(path).segmenter_settings() == FULL
    path.write_text(json.dumps({"model_sha256": "nothex"}))
    from mrefibrosis.errors import MREFibrosisError

    with pytest.raises(MREFibrosisError, match="model_sha256 must be") as err:
        config.load(path)
    assert "docs/pacs.md" in str(err.value)


def test_no_front_end_constructs_a_segmenter_but_through_the_settings():
    """`Segmenter(...)` is called in one place: SegmenterSettings.build."""
    callers = []
    for f in MODULE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Segmenter":
                callers.append(f.relative_to(MODULE).as_posix())
    assert callers == ["mrefibrosis/model/segmenter_settings.py"]


def test_the_slicer_child_process_gets_exactly_the_panels_settings():
    """The Lib's child-process arguments parse back, through the CLI's own parser, to the settings
    the panel held: nothing is lost between the panel and `mrefibrosis segment`."""
    from MREFibrosisLib import MREFibrosisLogic
    from MREFibrosisLib.exam_identity import ExamIdentity

    identity = ExamIdentity("vtkMRMLScalarVolumeNode1", "abc", "1.2", "1.2.3", "/data/exam", "d")
    argv = MREFibrosisLogic.segment_arguments(identity, "/tmp/out", FULL)
    assert argv[:3] == ["-m", "mrefibrosis", "segment"]
    assert SegmenterSettings.from_args(_parsed(*argv[2:])) == FULL
