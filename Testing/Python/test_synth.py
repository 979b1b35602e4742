"""The simulator's physics, its files (dciodvfy, reader round trip) and its determinism."""

import hashlib
import json

import numpy as np
import pytest
from validators import dciodvfy_errors

from mrefibrosis.errors import MREFibrosisError
from mrefibrosis.pipeline import process_exam
from mrefibrosis.reading import classify as roles
from mrefibrosis.reading.exam_loader import ReadOptions, classify_all, read_exam
from mrefibrosis.reading.series import scan_folder
from mrefibrosis.synth import anatomy as A
from mrefibrosis.synth.cohort import generate_cohort, parse_stage_mix
from mrefibrosis.synth.simulate import simulate_exam


def _liver_coverage(exam):
    return float((exam.confidence[exam.labels == A.LIVER] >= 0.95).mean())


@pytest.mark.parametrize("kpa", [2.0, 3.0, 5.0, 8.0])
def test_inversion_recovers_true_modulus_within_5_percent(kpa):
    ratios = []
    for seed in (101, 102):
        e = simulate_exam(seed, n_slices=2, liver_kpa=kpa, snr=25, failure=None)
        roi = e.gt_roi
        assert roi.sum() > 20
        ratios.append(np.median(e.stiffness_kpa[roi]) / np.median(e.true_kpa[roi]))
    assert np.all(np.abs(np.array(ratios) - 1) <= 0.05), ratios


def test_confidence_falls_with_stiffness_and_noise():
    soft = simulate_exam(7, n_slices=2, liver_kpa=2.0, snr=30, failure=None)
    stiff = simulate_exam(7, n_slices=2, liver_kpa=7.0, snr=30, failure=None)
    assert _liver_coverage(stiff) < _liver_coverage(soft)
    clean = simulate_exam(8, n_slices=2, liver_kpa=3.0, snr=40, failure=None)
    noisy = simulate_exam(8, n_slices=2, liver_kpa=3.0, snr=10, failure=None)
    assert _liver_coverage(noisy) < _liver_coverage(clean)


def test_iron_overload_is_a_technical_failure():
    e = simulate_exam(200, n_slices=2, failure="iron_overload")
    assert e.gt_roi.sum() * 1.5625**2 / 100 < 1.0


def test_anatomy_varies_between_patients_and_slices():
    a = simulate_exam(1, n_slices=3, failure=None).labels
    b = simulate_exam(2, n_slices=3, failure=None).labels
    assert (a[0] != b[0]).mean() > 0.05
    assert (a[0] != a[2]).mean() > 0.01
    for lab in (A.LIVER, A.FAT, A.MUSCLE, A.BONE, A.VESSEL, A.SPLEEN):
        assert (a == lab).any()
    # liver on the image left (patient right)
    cols = np.nonzero(a[0] == A.LIVER)[1]
    assert cols.mean() < a.shape[2] / 2


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    truths = generate_cohort(out, 2, seed=3, vendor="both", stage_mix=None, workers=1)
    return out, truths


def test_reader_reads_every_synthetic_exam_back(cohort):
    out, truths = cohort
    for i, truth in enumerate(truths):
        exam_dir = out / f"exam_{i:05d}"
        exam = read_exam(exam_dir / "dicom")
        assert exam.vendor == ("GE" if truth["vendor"] == "ge" else "SIEMENS")
        assert exam.geometry.row_spacing_mm == pytest.approx(1.5625)
        assert exam.geometry.rows == (256 if truth["vendor"] == "ge" else 204)
        assert exam.n_slices == truth["slices"]
        assert exam.confidence_valid is not None and exam.confidence_valid.any()
        assert exam.magnitude is not None
        scan = scan_folder(exam_dir / "dicom")
        classify_all(scan.series, ReadOptions())
        found = {s.role for s in scan.series}
        expected = (
            {roles.STIFFNESS, roles.CONFIDENCE, roles.RAW_MRE, roles.WAVE}
            if truth["vendor"] == "ge"
            else {roles.STIFFNESS, roles.MASKED_STIFFNESS, roles.MAGNITUDE, roles.PHASE}
        )
        assert expected <= found
        # measuring the ground-truth ROI reproduces the reader's value of truth.json
        result = process_exam(exam, exam_dir / "roi.seg.nrrd")
        m = result.measurement
        assert m.status == truth["status"]
        if truth["status"] == "ok":
            assert m.mean_kpa == pytest.approx(truth["reader_kpa"], rel=1e-6)
            assert m.stage == truth["stages"]["seed"]
            assert "roi_outside_confidence" not in m.flags or truth["vendor"] == "siemens"


def test_files_pass_dciodvfy(cohort):
    out, _ = cohort
    for series in sorted(out.glob("exam_*/dicom/series_*")):
        errors = dciodvfy_errors(sorted(series.iterdir())[0])
        assert not errors, (series.name, errors)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files(tmp_path):
    generate_cohort(tmp_path / "a", 1, seed=9, vendor="siemens", stage_mix=None, workers=1)
    generate_cohort(tmp_path / "b", 1, seed=9, vendor="siemens", stage_mix=None, workers=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    truth = json.loads((tmp_path / "a" / "exam_00000" / "truth.json").read_text())
    assert set(truth["stages"]) >= {"seed", "radelement", "liang2023_nafld"}
    assert truth["hatch"]["period"] in range(6, 11)


def test_stage_mix_parsing():
    assert parse_stage_mix("F0=1,F4=3") == {"F0": 1.0, "F4": 3.0}
    with pytest.raises(MREFibrosisError):
        parse_stage_mix("F9=1")
    with pytest.raises(MREFibrosisError):
        parse_stage_mix("F0=0")


def test_failure_option_forces_one_mode_and_names_the_moved_slices(tmp_path, capsys):
    """`synth --failure breath_hold` gives every exam that mode, and truth.json names the slices the
    reader left out by the location the files give them; the help names every mode there is."""
    import json

    import pydicom

    from mrefibrosis.cli import main
    from mrefibrosis.synth.simulate import FAILURES

    assert main(["-q", "synth", str(tmp_path / "c"), "--n", "1", "--vendor", "ge", "--seed", "4", "--workers", "1", "--failure", "breath_hold"]) == 0
    truth = json.loads((tmp_path / "c" / "exam_00000" / "truth.json").read_text())
    assert truth["failure"] == "breath_hold" and truth["rejected_slice_locations_mm"]
    locations = {
        round(float(pydicom.dcmread(f, stop_before_pixels=True).SliceLocation), 3) for f in (tmp_path / "c" / "exam_00000" / "dicom" / "series_0500").iterdir()
    }
    assert set(truth["rejected_slice_locations_mm"]) <= locations
    assert main(["synth", str(tmp_path / "d"), "--failure", "nope"]) == 2
    assert "unknown mode 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(mode in help_text for mode in FAILURES)
