"""One exam, one truth: the same exams through every front end give the same answer.

A set of simulated exams that raise every kind of finding (ok on both vendors, the breath-hold check
leaving slices out, a dark liver, a driver that was off, a very stiff liver, no confidence series, a
lost elastogram slice) goes through: CLI `measure` (automatic, and `--roi` on the automatic ROI),
the Slicer Lib's Segment and Compute on real MRML, the review page's session, the PACS worker (its
DICOM source replaced by a folder: the real Orthanc round trip is test_pacs_worker.py) and the batch
scorer's per-worker function (the Ray plumbing is test_batch.py). Status, reason, warnings, flags,
per-slice and pooled numbers and the automatic ROI must be identical: a front end that forgets an
Exam field, a QC rule or a segmenter setting fails here.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
slicer = pytest.importorskip("slicer")

from mrefibrosis.cli import main as cli_main  # noqa: E402
from mrefibrosis.model.inference import DEFAULT_MODEL  # noqa: E402
from mrefibrosis.model.onnx_format import graph_path_for  # noqa: E402
from mrefibrosis.model.segmenter_settings import SegmenterSettings  # noqa: E402
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam  # noqa: E402
from mrefibrosis.results.roi_files import read_roi  # noqa: E402
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam  # noqa: E402
from mrefibrosis.synth.simulate import simulate_exam  # noqa: E402
from MREFibrosisLib import MREFibrosisLogic  # noqa: E402
from MREFibrosisLib.segment_nodes import find_roi_segment, segment_mask  # noqa: E402

pytestmark = pytest.mark.skipif(not graph_path_for(DEFAULT_MODEL).exists(), reason="the shipped model has no ONNX graph")

SETTINGS = SegmenterSettings(device="cpu", runtime="onnx")
GE_STIFFNESS, GE_CONFIDENCE = "series_0500", "series_0507"  # synth/vendor_dicom.py: base 5, +0 and +7

# name: (seed, vendor, failure, how the files are changed after writing)
CASES = {
    "ge_ok": (61, "ge", None, None),
    "siemens_ok": (62, "siemens", None, None),
    "ge_breath_hold": (63, "ge", "breath_hold", None),
    "siemens_iron_overload": (64, "siemens", "iron_overload", None),
    "ge_driver_off": (65, "ge", "driver_off", None),
    "ge_very_stiff": (66, "ge", "very_stiff", None),
    "ge_no_confidence_series": (67, "ge", None, "drop_confidence"),
    "ge_lost_slice": (68, "ge", None, "drop_inner_slice"),
}


def _damage(dicom: Path, how: str | None) -> None:
    if how == "drop_confidence":
        shutil.rmtree(dicom / GE_CONFIDENCE)
    elif how == "drop_inner_slice":
        files = sorted((dicom / GE_STIFFNESS).iterdir())
        files[len(files) // 2].unlink()


@pytest.fixture(scope="module")
def exams(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    out = {}
    for name, (seed, vendor, failure, how) in CASES.items():
        settings = GE_SETTINGS if vendor == "ge" else SIEMENS_SETTINGS
        folder = root / name
        write_exam(folder, simulate_exam(seed, settings, n_slices=4, failure=failure, snr=30), vendor, f"parity-{name}")
        _damage(folder / "dicom", how)
        out[name] = folder / "dicom"
    return out


@pytest.fixture(scope="module")
def segmenter():
    return SETTINGS.build()


def _comparable(payload: dict) -> dict:
    """result.json without what differs by design between front ends: where the ROI came from
    (automatic, a file, an edited segment), the model identity (absent when Compute measures an
    edited ROI) and the output folder; everything measured stays."""
    p = json.loads(json.dumps(payload))
    p.get("provenance", {}).pop("roi_source", None)
    p.get("provenance", {}).pop("model", None)
    p.get("exam", {}).pop("roi_source", None)
    p.get("exam", {}).pop("segmentation", None)  # the model identity again (legacy place)
    for volatile in ("software", "created", "output"):
        p.pop(volatile, None)
    return p


def _as_json(result) -> dict:
    return json.loads(json.dumps(result.to_json(False)))


class FolderSource:
    """The PACS worker's source interface over local folders: fetch copies a study, store keeps
    the worker's result folder (result.json beside the DICOM results it uploads)."""

    name = "folders"

    def __init__(self, studies: dict[str, Path], keep: Path):
        self.studies, self.keep = studies, keep

    def poll(self, jobs, model_version, now=None):
        return jobs.enqueue(sorted(self.studies), model_version, 1)

    def fetch(self, study, folder):
        shutil.copytree(self.studies[study], folder, dirs_exist_ok=True)
        return sum(1 for _ in folder.rglob("*.dcm"))

    def store(self, files):
        for result_dir in {f.parent.parent for f in files}:
            key = json.loads((result_dir / "result.json").read_text())["exam"]["exam_key"]
            shutil.copytree(result_dir, self.keep / key, dirs_exist_ok=True)

    def after_done(self, jobs, study):
        pass


@pytest.fixture(scope="module")
def answers(exams, segmenter, tmp_path_factory):
    """Every front end's result.json (comparable part) and automatic ROI, per exam."""
    from mrefibrosis.batch.scorer import score_folder
    from mrefibrosis.pacs.worker import PacsWorker, WorkerConfig
    from MREFibrosisLib.standalone import bind_scene, restore, standalone_scene
    from MREFibrosisReview.session import ReviewSession

    tmp = tmp_path_factory.mktemp("answers")
    out: dict[str, dict[str, tuple[dict, np.ndarray]]] = {name: {} for name in exams}

    # CLI measure, automatic, all exams in one call; then --roi on each automatic ROI
    argv = ["-q", "measure", *[str(p) for p in exams.values()], "--out", str(tmp / "cli")]
    assert cli_main([*argv, *SETTINGS.to_argv()]) in (0, 2)
    for name, dicom in exams.items():
        exam = read_exam(dicom)
        folder = tmp / "cli" / exam.exam_key
        roi = read_roi(folder / "roi.seg.nrrd", exam.geometry)
        out[name]["cli"] = (_comparable(json.loads((folder / "result.json").read_text())), roi)
        assert cli_main(["-q", "measure", str(dicom), "--roi", str(folder / "roi.seg.nrrd"), "--out", str(tmp / "cli_roi" / name)]) == 0
        out[name]["cli --roi"] = (_comparable(json.loads((tmp / "cli_roi" / name / "result.json").read_text())), roi)

    # the Slicer Lib on real MRML: Segment (in this process) and Compute; the review page's session
    scene, app, volumes, segmentations = standalone_scene()
    previous = bind_scene(scene, volumes, segmentations)
    for name, dicom in exams.items():
        logic = MREFibrosisLogic()
        nodes = logic.load_exam(scene, dicom)
        seg = logic.segment(scene, nodes.stiffness, SETTINGS)
        result, _ = logic.compute(scene, nodes.stiffness, seg)
        out[name]["slicer"] = (_comparable(_as_json(result)), segment_mask(seg, find_roi_segment(seg), nodes.stiffness))
        # the panel's default: Segment in a child `mrefibrosis segment`, then Compute
        job = logic.start_segment(nodes.stiffness, SETTINGS, work_dir=tmp / "child" / name)
        assert job.runner.wait(300).state.value == "succeeded", job.runner.output[-3:]
        seg = logic.finish_segment(scene, job)
        result, _ = logic.compute(scene, nodes.stiffness, seg)
        out[name]["slicer child process"] = (_comparable(_as_json(result)), segment_mask(seg, find_roi_segment(seg), nodes.stiffness))
        # an ROI file, as `measure --roi` takes it, in a fresh session
        file_logic = MREFibrosisLogic()
        file_nodes = file_logic.load_exam(scene, dicom)
        roi_file = tmp / "cli" / read_exam(dicom).exam_key / "roi.seg.nrrd"
        seg = file_logic.import_roi_file(scene, file_nodes.stiffness, roi_file)
        result, _ = file_logic.compute(scene, file_nodes.stiffness, seg)
        out[name]["slicer, ROI file"] = (_comparable(_as_json(result)), segment_mask(seg, find_roi_segment(seg), file_nodes.stiffness))
        session = ReviewSession(scene, logic=MREFibrosisLogic())
        session.open(dicom, settings=SETTINGS, use_stored=False)
        session.compute()
        out[name]["review"] = (_comparable(_as_json(session.last)), session.last.roi)
    restore(previous)
    scene.Clear(1)
    del app

    # the PACS worker, one job per exam
    config = WorkerConfig(jobs_db=str(tmp / "jobs.sqlite"), work_dir=str(tmp), preset="seed")
    worker = PacsWorker(config, segmenter=segmenter)
    worker.source = FolderSource({name: dicom for name, dicom in exams.items()}, tmp / "worker")
    worker.poll()
    worker.run_due()
    # the batch scorer's per-worker call
    for name, dicom in exams.items():
        exam = read_exam(dicom)
        for front, folder in (("worker", tmp / "worker" / exam.exam_key), ("batch", None)):
            if front == "batch":
                score_folder(str(dicom), name, tmp / "batch", segmenter, "seed", ReadOptions(), "parity")
                folder = tmp / "batch" / "exams" / name
                folder = folder / exam.exam_key if (folder / exam.exam_key).is_dir() else folder
            payload = json.loads((folder / "result.json").read_text())
            out[name][front] = (_comparable(payload), read_roi(folder / "roi.seg.nrrd", exam.geometry))
    return out


# Two families. The automatic ROI: every front end that runs the segmenter (then Compute, where a
# person could edit) answers what `measure` answers, the liver-based checks included. An ROI file:
# no segmenter ran, so there is no predicted liver; every front end answers what `measure --roi` does.
AUTOMATIC = ["slicer", "slicer child process", "review", "worker", "batch"]
FROM_FILE = ["slicer, ROI file"]


@pytest.mark.parametrize("front_end", AUTOMATIC)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_front_end_gives_the_clis_answer_on_the_automatic_roi(answers, name, front_end):
    cli, cli_roi = answers[name]["cli"]
    got, roi = answers[name][front_end]
    assert np.array_equal(roi, cli_roi), f"{front_end}: automatic ROI differs by {int((roi != cli_roi).sum())} px"
    assert got == cli


@pytest.mark.parametrize("front_end", FROM_FILE)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_front_end_gives_the_clis_answer_on_an_roi_file(answers, name, front_end):
    cli, cli_roi = answers[name]["cli --roi"]
    got, roi = answers[name][front_end]
    assert np.array_equal(roi, cli_roi)
    assert got == cli


def test_the_matrix_covers_every_kind_of_finding(answers):
    """The exams above must keep raising what they were made for, or the matrix proves less."""
    cli = {name: answers[name]["cli"][0] for name in CASES}
    text = {name: json.dumps(payload) for name, payload in cli.items()}
    assert cli["ge_ok"]["status"] == "ok" and cli["siemens_ok"]["status"] == "ok"
    assert "offsets_misregistered" in text["ge_breath_hold"]
    assert cli["siemens_iron_overload"]["status"] == "indeterminate"
    assert cli["ge_driver_off"]["status"] == "indeterminate"
    assert "slice_gap" in text["ge_lost_slice"]
    assert "confidence" in text["ge_no_confidence_series"]
    vendors = {payload["exam"]["vendor"] for payload in cli.values()}
    assert {"GE", "SIEMENS"} <= {v.upper() for v in vendors}
