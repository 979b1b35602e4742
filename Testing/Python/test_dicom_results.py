"""DICOM SEG + TID 1500 SR + RGB overlay: valid (dciodvfy), read back to the same numbers, idempotent."""

import numpy as np
import pydicom
import pytest
from validators import dciodvfy_errors

from mrefibrosis.cli import main
from mrefibrosis.synth.cohort import generate_cohort


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom_results")
    generate_cohort(root / "c", 1, seed=21, vendor="ge", stage_mix=None, workers=1)
    exam = root / "c" / "exam_00000"
    out = root / "out"
    assert main(["-q", "measure", str(exam / "dicom"), "--roi", str(exam / "roi.seg.nrrd"), "--out", str(out), "--dicom"]) == 0
    return exam, out


def test_files_pass_dciodvfy(measured):
    _, out = measured
    for name in ("SEG.dcm", "SR.dcm", "OVERLAY_000.dcm"):
        assert dciodvfy_errors(out / "dicom" / name) == [], name


def test_seg_and_sr_read_back_to_the_same_numbers(measured):
    import json

    import highdicom as hd

    exam_dir, out = measured
    result = json.loads((out / "result.json").read_text())
    seg = hd.seg.segread(out / "dicom" / "SEG.dcm")
    sources = sorted(
        (pydicom.dcmread(f, stop_before_pixels=True) for f in (exam_dir / "dicom" / "series_0500").iterdir()), key=lambda d: float(d.ImagePositionPatient[2])
    )
    mask = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], ignore_spatial_locations=True, assert_missing_frames_are_empty=True)[..., 0]
    from mrefibrosis.reading.exam_loader import read_exam
    from mrefibrosis.results.roi_files import read_roi

    exam = read_exam(exam_dir / "dicom")
    roi = read_roi(out / "roi.seg.nrrd", exam.geometry)
    np.testing.assert_array_equal(mask.astype(bool), roi)
    seg_ds = pydicom.dcmread(out / "dicom" / "SEG.dcm")
    tracking = seg_ds.SegmentSequence[0].TrackingUID
    assert seg_ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"

    sr = pydicom.dcmread(out / "dicom" / "SR.dcm")
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID and sr.SeriesInstanceUID != sources[0].SeriesInstanceUID
    nums, codes, uids = {}, {}, []

    def walk(items):
        for it in items:
            name = it.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in it else ""
            if it.ValueType == "NUM":
                mods = [
                    c.ConceptCodeSequence[0].CodeMeaning
                    for c in it.get("ContentSequence", [])
                    if c.ValueType == "CODE" and c.ConceptNameCodeSequence[0].CodeMeaning == "Derivation"
                ]
                nums[(name, mods[0] if mods else "")] = float(it.MeasuredValueSequence[0].NumericValue)
            elif it.ValueType == "CODE":
                codes[name] = it.ConceptCodeSequence[0].CodeMeaning
            elif it.ValueType == "UIDREF":
                uids.append(it.UID)
            walk(it.get("ContentSequence", []))

    walk(sr.ContentSequence)
    assert nums[("Elasticity", "Mean")] == pytest.approx(result["mean_kpa"], rel=1e-9)
    assert nums[("Elasticity", "Median")] == pytest.approx(result["median_kpa"], rel=1e-9)
    assert nums[("Area", "")] == pytest.approx(result["roi_area_cm2"], rel=1e-9)
    assert codes["Liver fibrosis stage"].startswith(result["stage"])
    assert tracking in uids  # one tracking UID links the SEG segment and the SR group

    sc = pydicom.dcmread(out / "dicom" / "OVERLAY_000.dcm")
    assert sc.PhotometricInterpretation == "RGB" and sc.StudyInstanceUID == sr.StudyInstanceUID
    assert len({seg_ds.SeriesInstanceUID, sr.SeriesInstanceUID, sc.SeriesInstanceUID}) == 3
    for f in (out / "dicom").iterdir():
        assert f.read_bytes()[:128] == b"\0" * 128


def test_results_are_idempotent(measured, tmp_path):
    exam_dir, out = measured
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(tmp_path), "--dicom"]) == 0
    for name in ("SEG.dcm", "SR.dcm", "OVERLAY_000.dcm"):
        a = pydicom.dcmread(out / "dicom" / name)
        b = pydicom.dcmread(tmp_path / "dicom" / name)
        assert a.SOPInstanceUID == b.SOPInstanceUID and a.SeriesInstanceUID == b.SeriesInstanceUID


def test_results_without_dicom_remove_an_earlier_runs_dicom_objects(measured, tmp_path):
    """Measured again into the same folder without --dicom: the SEG/SR/overlays of the earlier ROI
    must not stay beside the new files (a viewer, or the review page's stored-ROI start, would take
    them for the current result); files of other names stay."""
    exam_dir, _ = measured
    out = tmp_path / "out"
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(out), "--dicom"]) == 0
    assert (out / "dicom" / "SEG.dcm").exists() and (out / "dicom" / "OVERLAY_000.dcm").exists()
    (out / "dicom" / "OVERLAY_999.dcm").write_bytes(b"from an earlier run with more slices")
    (out / "dicom" / "notes.txt").write_text("a reader's own file")
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(out), "--dicom"]) == 0
    assert not (out / "dicom" / "OVERLAY_999.dcm").exists() and (out / "dicom" / "SEG.dcm").exists()
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "dicom").iterdir()) == ["notes.txt"]
    (out / "dicom" / "notes.txt").unlink()
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(out), "--dicom"]) == 0
    assert main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(exam_dir / "roi.seg.nrrd"), "--out", str(out)]) == 0
    assert not (out / "dicom").exists()


def test_indeterminate_report(tmp_path):

    from mrefibrosis.pipeline import process_exam
    from mrefibrosis.reading.exam_loader import read_exam
    from mrefibrosis.results.dicom_results import build_dicom_results

    generate_cohort(tmp_path / "c", 1, seed=22, vendor="siemens", stage_mix=None, workers=1)
    exam = read_exam(tmp_path / "c" / "exam_00000" / "dicom")
    exam.valid[:] = False
    result = process_exam(exam, tmp_path / "c" / "exam_00000" / "roi.seg.nrrd")
    assert result.measurement.status == "indeterminate"
    res = build_dicom_results(result)
    text = str(res.sr)
    assert "INDETERMINATE" in text and "Elasticity" not in text


def _observers(sr) -> list[tuple[str, str]]:
    """(observer type, name) pairs of the SR's observation context."""
    items = sr.ContentSequence
    found, kind = [], None
    for item in items:
        concept = item.ConceptNameCodeSequence[0].CodeValue
        if concept == "121005":  # Observer Type
            kind = item.ConceptCodeSequence[0].CodeMeaning
        elif concept in ("121008", "121013"):  # Person Observer Name, Device Observer Name
            found.append((kind, str(item.PersonName if concept == "121008" else item.TextValue)))
    return found


def test_sr_names_the_reader_who_edited_the_roi(tmp_path):
    """An ROI a person edited is reported with that person as observer beside the device; the
    segmenter's untouched ROI with the device alone; a name DICOM cannot store is refused."""
    from mrefibrosis.errors import OutputError
    from mrefibrosis.pipeline import process_exam
    from mrefibrosis.reading.exam_loader import read_exam
    from mrefibrosis.results.dicom_results import build_dicom_results
    from mrefibrosis.results.exam_result import RoiKind, RoiSource
    from mrefibrosis.results.roi_files import read_roi

    generate_cohort(tmp_path / "c", 1, seed=23, vendor="ge", stage_mix=None, workers=1)
    exam_dir = tmp_path / "c" / "exam_00000"
    exam = read_exam(exam_dir / "dicom")
    mask = read_roi(exam_dir / "roi.seg.nrrd", exam.geometry)
    edited = process_exam(exam, roi_mask=mask, roi_name="ROI")
    assert edited.provenance.roi_source == RoiSource(RoiKind.EDITED, "ROI")
    sr = build_dicom_results(edited, reader="Doe^Jane").sr
    sr.save_as(tmp_path / "SR.dcm")
    assert dciodvfy_errors(tmp_path / "SR.dcm") == []
    named = _observers(sr)
    assert ("Person", "Doe^Jane") in named and any(kind == "Device" for kind, _ in named)
    unnamed = _observers(build_dicom_results(edited).sr)
    assert ("Person", "Reader^Unnamed") in unnamed
    from_file = _observers(build_dicom_results(process_exam(exam, exam_dir / "roi.seg.nrrd")).sr)
    assert [kind for kind, _ in from_file] == ["Device"]
    with pytest.raises(OutputError, match="reader's name"):
        build_dicom_results(edited, reader="a\\b")
