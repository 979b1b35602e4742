"""Damaged and hostile exams: each failure class of the mutation campaign as a minimal reproducer
(a typed one-line error, or a result whose flags say what is wrong; never a crash, a stall or a
silently different number), and a bounded, seeded run of the campaign itself."""

import json
import logging
import random
import time

import numpy as np
import pydicom
import pytest
from fixtures import make_ge_exam, make_siemens_exam
from fuzz_harness import (
    confidence_files,
    m_huge_elastogram,
    m_junk_headers,
    m_oversized_series,
    m_zero_tail,
    peak_memory_mb,
    prepare_base_exams,
    run_campaign,
    stiffness_files,
)

from mrefibrosis.cli import main
from mrefibrosis.errors import ExamNotFoundError, MREFibrosisError, PixelDataError, SeriesError, UnitError
from mrefibrosis.pipeline import process_exam, write_results
from mrefibrosis.reading.budget import BudgetLimits, ReadBudgetError
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.reading.series import scan_folder
from mrefibrosis.results.roi_files import write_seg_nrrd


@pytest.fixture()
def ge(tmp_path):
    fx = make_ge_exam(tmp_path / "ge", seed=21, study_key="hostile")
    roi = (fx.confidence >= 950) & fx.liver[None] & (fx.stiffness_pa > 0) & (fx.stiffness_pa < 32766)
    roi_file = tmp_path / "roi.seg.nrrd"
    write_seg_nrrd(roi_file, roi, read_exam(fx.path).geometry)
    clean = process_exam(fx.path, roi_file).measurement
    assert clean.status == "ok"
    return fx, roi_file, clean


@pytest.fixture()
def siemens(tmp_path):
    fx = make_siemens_exam(tmp_path / "sie", seed=22, rows=96, cols=128)
    roi = ~fx.low_confidence & fx.liver[None]
    roi_file = tmp_path / "sie-roi.seg.nrrd"
    write_seg_nrrd(roi_file, roi, read_exam(fx.path).geometry)
    return fx, roi_file, process_exam(fx.path, roi_file).measurement


def _series_files(folder, description):
    out = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if str(ds.get("SeriesDescription", "")) == description:
            out.append(f)
    return out


def _edit(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=False)


def _one_line(exc) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


# ------------------------------------------------------------------ the seven unhandled classes
def test_functional_group_without_position_is_a_typed_error(ge):
    fx, roi, _ = ge

    def enhanced_without_position(ds):
        item, ori, meas = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
        ori.ImageOrientationPatient = ds.ImageOrientationPatient
        meas.PixelSpacing = ds.PixelSpacing
        item.PlanePositionSequence = [pydicom.Dataset()]  # present, but without ImagePositionPatient
        item.PlaneOrientationSequence, item.PixelMeasuresSequence = [ori], [meas]
        ds.PerFrameFunctionalGroupsSequence = [item]

    _edit(stiffness_files(fx.path)[1], enhanced_without_position)
    with pytest.raises(SeriesError) as err:
        read_exam(fx.path)
    assert "ImagePositionPatient" in _one_line(err.value)


def test_empty_functional_groups_on_a_single_frame_image_fall_back_to_its_own_geometry(ge):
    fx, roi, clean = ge

    def empty_groups(ds):
        item = pydicom.Dataset()
        item.FrameContentSequence = [pydicom.Dataset()]
        ds.PerFrameFunctionalGroupsSequence = [item]

    for f in stiffness_files(fx.path):
        _edit(f, empty_groups)
    assert process_exam(fx.path, roi).measurement.mean_kpa == pytest.approx(clean.mean_kpa)


@pytest.mark.parametrize("uid", ["1.2.3.4", "not-a-uid"])
def test_unknown_transfer_syntax_is_a_typed_error(ge, uid):
    fx, _, _ = ge

    def change(ds):
        ds.file_meta.TransferSyntaxUID = uid

    f = stiffness_files(fx.path)[0]
    ds = pydicom.dcmread(f)
    change(ds)
    ds.save_as(f, enforce_file_format=False, implicit_vr=False, little_endian=True)
    with pytest.raises(PixelDataError, match="transfer syntax") as err:
        read_exam(fx.path)
    _one_line(err.value)


def test_corrupt_file_meta_vr_does_not_stop_the_folder_scan(ge):
    fx, roi, clean = ge
    donor = stiffness_files(fx.path)[0].read_bytes()
    i = donor.index(b"\x02\x00\x02\x00UI")
    bad = donor[:i] + b"\x02\x00\x02\x00ZZ" + donor[i + 6 :]
    (fx.path / "corrupt_meta.dcm").write_bytes(bad)
    scan = scan_folder(fx.path)  # raised NotImplementedError from is_dicomdir before
    assert scan.files_seen >= 1
    assert process_exam(fx.path, roi).measurement.mean_kpa == pytest.approx(clean.mean_kpa)


def test_non_finite_position_in_a_magnitude_image_skips_the_magnitude_with_a_warning(ge):
    fx, roi, clean = ge
    raw = _series_files(fx.path, "MRE 60Hz")
    _edit(raw[-1], lambda ds: ds.__setitem__("ImagePositionPatient", pydicom.DataElement(0x00200032, "DS", "nan\\0\\0")))
    result = process_exam(fx.path, roi)
    m = result.measurement
    assert result.exam.magnitude is None and "optional_series_skipped" in m.warnings
    assert m.mean_kpa == pytest.approx(clean.mean_kpa)
    # and in the elastogram itself: a typed error
    _edit(stiffness_files(fx.path)[0], lambda ds: ds.__setitem__("ImagePositionPatient", pydicom.DataElement(0x00200032, "DS", "inf\\0\\0")))
    with pytest.raises(SeriesError, match="non-finite"):
        read_exam(fx.path)


def test_frames_that_disagree_with_the_pixel_data_are_a_typed_error(ge):
    fx, _, _ = ge

    def change(ds):
        ds.NumberOfFrames = 3
        ds.Rows = int(ds.Rows) // 2

    _edit(stiffness_files(fx.path)[2], change)
    with pytest.raises(MREFibrosisError) as err:
        read_exam(fx.path)
    assert "Rows" in _one_line(err.value) or "frames" in str(err.value)


# ------------------------------------------------------------------ driver frequency
def _set_driver_frequency(folder, series_number: str | None, vr: str, value) -> None:
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        ds = pydicom.dcmread(f)
        if series_number is None or str(ds.SeriesNumber) == series_number:
            ds.add_new((0x0043, 0x10A2), vr, value)
            ds.save_as(f)


def _describe_without_frequency(folder) -> None:
    """The raw series is described "MRE 60Hz": a statement of the frequency; take it away."""
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(f)
        if "Hz" in str(ds.get("SeriesDescription", "")):
            ds.SeriesDescription = "MRE raw"
            ds.save_as(f)


def test_a_driver_frequency_that_is_not_a_number_is_unknown_and_stages_nothing(ge):
    """ "nan\\4" used to stage silently: abs(nan - 60) > 0.5 is False."""
    fx, roi, clean = ge
    _set_driver_frequency(fx.path, None, "LO", "nan\\4")
    _describe_without_frequency(fx.path)
    m = process_exam(fx.path, roi).measurement
    assert "driver_frequency_unknown" in m.flags and m.mean_kpa == pytest.approx(clean.mean_kpa)
    assert m.stage is None and "stage_refused_frequency" in m.flags and any("--driver-frequency" in msg for msg in m.messages)


def test_a_named_driver_frequency_stages_an_exam_whose_files_do_not_say_it(ge, tmp_path, capsys):
    fx, roi, clean = ge
    _set_driver_frequency(fx.path, None, "LO", "")
    _describe_without_frequency(fx.path)
    assert process_exam(fx.path, roi).measurement.stage is None
    named = process_exam(fx.path, roi, ReadOptions(driver_frequency_hz=60.0))
    assert named.measurement.stage == clean.stage and named.exam.driver_frequency_hz == 60.0
    assert main(["measure", str(fx.path), "--roi", str(roi), "--out", str(tmp_path / "out"), "--driver-frequency", "60"]) == 0
    assert json.loads((tmp_path / "out" / "result.json").read_text())["stage"] == clean.stage
    assert main(["measure", str(fx.path), "--roi", str(roi), "--out", str(tmp_path / "o2"), "--driver-frequency", "nan"]) != 0
    assert "--driver-frequency must be" in capsys.readouterr().err


def test_a_named_driver_frequency_that_the_files_contradict_is_used_with_a_warning(ge):
    fx, roi, _ = ge
    m = process_exam(fx.path, roi, ReadOptions(driver_frequency_hz=40.0)).measurement
    assert "driver_frequency_conflict" in m.flags and any("40 Hz from --driver-frequency" in msg for msg in m.messages)
    assert "stage_refused_frequency" in m.flags  # the 60 Hz preset does not stage a 40 Hz exam


def test_series_that_disagree_on_the_driver_frequency_are_flagged_not_resolved_by_order(ge):
    fx, roi, clean = ge
    _set_driver_frequency(fx.path, "500", "SS", [40, 4])  # the elastogram says 40 Hz, the raw series 60 Hz
    result = process_exam(fx.path, roi)
    m = result.measurement
    assert "driver_frequency_conflict" in m.flags and "driver_frequency_unknown" in m.flags
    assert result.status_text.startswith("ok with warnings") and "40 Hz" in " ".join(m.messages) and "60 Hz" in " ".join(m.messages)
    assert result.exam.driver_frequency_hz is None


# ------------------------------------------------------------------ repeat acquisitions
def _repeat_series(folder, series_number: str, factor: float = 1.3) -> str:
    """A second acquisition of one series in the same study at the same positions: series number
    +100, new UIDs, stored values x factor."""
    uid, number = pydicom.uid.generate_uid(), None
    out = folder / "repeat"
    out.mkdir()
    for n, f in enumerate(sorted(p for p in folder.rglob("*") if p.is_file() and out not in p.parents)):
        ds = pydicom.dcmread(f)
        if str(ds.SeriesNumber) != series_number:
            continue
        number = int(ds.SeriesNumber) + 100
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SeriesNumber = uid, pydicom.uid.generate_uid(), number
        values = ds.pixel_array.astype(np.float64) * factor
        ds.PixelData = np.clip(values, 0, np.iinfo(ds.pixel_array.dtype).max).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(out / f"r{n:03d}.dcm")
    return str(number)


@pytest.mark.parametrize("vendor", ["ge", "siemens"])
def test_a_repeat_acquisition_is_refused_as_ambiguous_and_the_option_picks_one(vendor, ge, siemens):
    """GE took the repeat as the hatched twin (every pixel hatch, a technical failure with a wrong
    reason); Siemens measured the first series silently."""
    fx, roi, clean = ge if vendor == "ge" else siemens
    original = "500" if vendor == "ge" else "13"
    repeat = _repeat_series(fx.path, original)
    with pytest.raises(ExamNotFoundError, match="repeat acquisition") as err:
        read_exam(fx.path)
    message = _one_line(err.value)
    assert f"series {original} " in message and f"series {repeat} " in message and "--stiffness-series" in message
    chosen = process_exam(fx.path, roi, ReadOptions(stiffness_series=original)).measurement
    assert chosen.mean_kpa == pytest.approx(clean.mean_kpa)


# ------------------------------------------------------------------ stalls and memory
def test_header_followed_by_zeros_is_read_in_no_time(ge):
    fx, roi, clean = ge
    t0 = time.monotonic()
    m_zero_tail(fx.path, random.Random(1), size_mb=200)
    m_zero_tail(fx.path, random.Random(2), size_mb=600)  # over the per-file cap: not parsed at all
    result = process_exam(fx.path, roi).measurement
    assert time.monotonic() - t0 < 10.0  # 49-69 s at 200 MB and 147 s at 600 MB before
    assert result.mean_kpa == pytest.approx(clean.mean_kpa)


def test_zero_filled_files_with_a_valid_meta_header_cost_no_time(ge):
    """A DICM preamble and file meta header, then zeros: a run of (0000,0000) elements. Each such file
    parsed to the 16 MB header cap (about 7 s); 17 of them pushed an exam past its 120 s budget."""
    from pydicom.dataset import FileMetaDataset

    fx, roi, clean = ge
    for n in range(17):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
        meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        target = fx.path / f"zeros_{n:02d}.dcm"
        with open(target, "wb") as fh:
            fh.write(b"\0" * 128 + b"DICM")
            pydicom.filewriter.write_file_meta_info(fh, meta, enforce_standard=True)
        with open(target, "r+b") as fh:
            fh.truncate(15 << 20)  # sparse: no disk
    t0 = time.monotonic()
    result = process_exam(fx.path, roi).measurement
    assert time.monotonic() - t0 < 10.0
    assert result.mean_kpa == pytest.approx(clean.mean_kpa)


def test_four_huge_elastogram_slices_are_refused_before_decoding(ge):
    """4 x 4096 x 4096 stiffness images, each under the per-file caps: 18.7 s and 2.97 GB before."""
    fx, roi, _ = ge
    m_huge_elastogram(fx.path, random.Random(1))
    before = peak_memory_mb()
    t0 = time.monotonic()
    with pytest.raises(PixelDataError, match="1024-pixel cap") as err:
        process_exam(fx.path, roi)
    assert time.monotonic() - t0 < 5.0
    assert peak_memory_mb() - before < 400
    _one_line(err.value)


def test_unrelated_files_with_huge_headers_do_not_spend_the_exams_budget(ge):
    """140 junk files with 15 MB headers beside a good exam made it fail its 2 GB per-exam budget:
    their header values are now skipped by a seek, and the folder scan has its own budget."""
    fx, roi, clean = ge
    m_junk_headers(fx.path, random.Random(1))
    t0 = time.monotonic()
    result = process_exam(fx.path, roi, ReadOptions(budget=BudgetLimits(max_parsed_bytes_per_exam=64 << 20))).measurement
    assert time.monotonic() - t0 < 30.0
    assert result.mean_kpa == pytest.approx(clean.mean_kpa)


def test_a_file_that_cannot_be_opened_says_permission_denied_and_counts_as_damaged(ge, monkeypatch):
    """Tests run as root here, so chmod cannot deny a read: the denial is emulated at open()."""
    import builtins

    from mrefibrosis.reading import dicom_files
    from mrefibrosis.reading import series as series_module

    fx, roi, _ = ge
    denied = stiffness_files(fx.path)[-1]
    real_open = builtins.open

    def guarded_open(path, *args, **kwargs):
        if str(path) == str(denied):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(dicom_files, "open", guarded_open, raising=False)
    monkeypatch.setattr(series_module, "open", guarded_open, raising=False)
    scan = scan_folder(fx.path)
    assert any("permission denied" in reason for reason in scan.skipped)
    m = process_exam(fx.path, roi).measurement
    assert "unreadable_files_in_series" in m.warnings and "slice_gap" in m.warnings


def test_oversized_research_series_is_not_decoded(ge):
    fx, roi, clean = ge
    m_oversized_series(fx.path, random.Random(3), side=2048, n=6)
    limits = BudgetLimits(max_decoded_values_per_exam=4 * 1024 * 1024)  # well under the 25 M values of that series
    result = process_exam(fx.path, roi, ReadOptions(budget=limits)).measurement
    assert result.mean_kpa == pytest.approx(clean.mean_kpa)


def test_per_exam_caps_give_one_line_errors(ge):
    fx, _, _ = ge
    with pytest.raises(ReadBudgetError, match="per-exam cap") as err:
        read_exam(fx.path, ReadOptions(budget=BudgetLimits(max_decoded_values_per_exam=5000)))
    _one_line(err.value)
    with pytest.raises(ReadBudgetError, match="per-exam cap"):
        read_exam(fx.path, ReadOptions(budget=BudgetLimits(max_parsed_bytes_per_exam=20_000)))
    with pytest.raises(ReadBudgetError, match="time cap"):
        read_exam(fx.path, ReadOptions(budget=BudgetLimits(max_seconds_per_exam=0.0)))


# ------------------------------------------------------------------ silent wrong answers
def test_swapped_stiffness_and_confidence_descriptions_are_refused(ge):
    fx, roi, _ = ge
    s, c = stiffness_files(fx.path), confidence_files(fx.path)
    for f in s:
        _edit(f, lambda ds: (setattr(ds, "SeriesDescription", "Confidence"), setattr(ds, "ImageComments", "Confidence")))
    for f in c:
        _edit(f, lambda ds: (setattr(ds, "SeriesDescription", "Stiffness"), setattr(ds, "ImageComments", "Stiffness")))
    with pytest.raises(MREFibrosisError) as err:
        process_exam(fx.path, roi)
    assert "--confidence-series" in _one_line(err.value) or "--stiffness-unit" in str(err.value)


@pytest.mark.parametrize(
    "damage",
    ["manufacturer_ge", "window_4000", "rwvm_pa", "rwvm_hpa", "ge_private_junk"],
)
def test_siemens_unit_cannot_be_guessed_ten_times_off(siemens, damage):
    fx, roi, clean = siemens
    mask = ~fx.low_confidence & fx.liver[None]
    assert clean.mean_kpa == pytest.approx(float(fx.elastogram_10pa[mask].mean()) / 100.0, rel=1e-6)

    def rwvm(unit):
        def change(ds):
            item, code = pydicom.Dataset(), pydicom.Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = unit, "UCUM", unit
            item.MeasurementUnitsCodeSequence = [code]
            item.RealWorldValueSlope, item.RealWorldValueIntercept = 1.0, 0.0
            ds.RealWorldValueMappingSequence = [item]

        return change

    changes = {
        "manufacturer_ge": lambda ds: setattr(ds, "Manufacturer", "GE MEDICAL SYSTEMS"),
        "window_4000": lambda ds: (setattr(ds, "WindowCenter", 4000), setattr(ds, "WindowWidth", 8000)),
        "rwvm_pa": rwvm("Pa"),
        "rwvm_hpa": rwvm("hPa"),
        "ge_private_junk": lambda ds: ds.add_new((0x0019, 0x109C), "LO", "junk"),
    }
    files = stiffness_files(fx.path) + confidence_files(fx.path)
    for f in files:
        _edit(f, changes[damage])
    try:
        m = process_exam(fx.path, roi).measurement
    except UnitError as exc:
        assert "--stiffness-unit" in _one_line(exc)
        return
    assert m.status != "ok" or m.mean_kpa == pytest.approx(clean.mean_kpa, rel=0.05), (damage, m.mean_kpa)


def test_rescale_slope_on_one_slice_is_flagged(ge):
    fx, roi, clean = ge
    _edit(stiffness_files(fx.path)[1], lambda ds: setattr(ds, "RescaleSlope", 1.25))
    m = process_exam(fx.path, roi).measurement
    assert "rescale_varies_between_slices" in m.warnings and m.status == "ok"


@pytest.mark.parametrize("slope", [0.1, 0.0, 10.0])
def test_rescale_slope_on_the_series_that_makes_values_implausible_is_refused(ge, slope):
    fx, roi, _ = ge
    for f in stiffness_files(fx.path):
        _edit(f, lambda ds: setattr(ds, "RescaleSlope", slope))
    with pytest.raises(UnitError) as err:
        process_exam(fx.path, roi)
    _one_line(err.value)


def test_user_unit_is_kept_with_a_warning_when_implausible(ge):
    fx, roi, _ = ge
    m = process_exam(fx.path, roi, ReadOptions(stiffness_unit="10Pa")).measurement
    assert "stiffness_unit_doubtful" in m.warnings


@pytest.mark.parametrize("how", ["delete", "corrupt", "shadow"])
def test_lost_inner_slice_is_flagged(ge, how):
    fx, roi, _ = ge
    files = stiffness_files(fx.path)
    lost = files[1]
    if how == "delete":
        lost.unlink()
    elif how == "corrupt":
        lost.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    else:
        lost.write_bytes(files[2].read_bytes())
    m = process_exam(fx.path, roi).measurement
    assert "slice_gap" in m.warnings
    if how == "shadow":
        assert "duplicate_images" in m.warnings


@pytest.mark.parametrize("edge", [0, -1])
def test_lost_edge_slice_is_witnessed_by_the_other_series(ge, edge):
    """A lost first or last elastogram slice leaves no gap in the elastogram's own positions: the
    confidence (and magnitude, wave) series of the same acquisition still hold that position."""
    fx, roi, _ = ge
    files = stiffness_files(fx.path)
    files[edge].unlink()
    m = process_exam(fx.path, roi).measurement
    assert "slice_gap" in m.warnings
    assert any("missing from the elastogram" in msg and "Confidence" in msg for msg in m.messages)


@pytest.mark.parametrize("size", [0, 64, 131])
def test_a_file_cut_off_before_its_dicm_marker_counts_as_damaged(ge, size):
    """A copy that stopped inside the 128-byte preamble leaves zeros and no DICM marker: it used to
    be skipped as 'not DICOM' and the series' damaged count stayed 0."""
    fx, roi, _ = ge
    files = stiffness_files(fx.path)
    with open(files[-1], "r+b") as fh:
        fh.truncate(size)
    m = process_exam(fx.path, roi).measurement
    assert "unreadable_files_in_series" in m.warnings and "slice_gap" in m.warnings


def test_a_complete_exam_whose_series_announce_the_raw_image_count_has_no_gap(ge):
    """ImagesInAcquisition on a real GE exam is the raw acquisition's count (64 for 8 slices x 4
    offsets x 2), not the number of stiffness slices: never a reason for slice_gap."""
    fx, roi, _ = ge
    for f in stiffness_files(fx.path) + confidence_files(fx.path):
        _edit(f, lambda ds: setattr(ds, "ImagesInAcquisition", 64))
    assert "slice_gap" not in process_exam(fx.path, roi).measurement.flags


def test_confidence_on_another_pixel_spacing_is_not_used(ge):
    fx, roi, _ = ge
    for f in confidence_files(fx.path):
        _edit(f, lambda ds: setattr(ds, "PixelSpacing", [float(v) * 1.1 for v in ds.PixelSpacing]))
    result = process_exam(fx.path, roi)
    assert result.exam.confidence_valid is None
    assert {"confidence_grid_differs", "no_confidence_data"} <= set(result.measurement.warnings)


@pytest.mark.parametrize("spacing", ["1e200", "0", "-1.5", "1e-9"])
def test_absurd_pixel_spacing_is_refused(ge, spacing, tmp_path):
    fx, roi, _ = ge
    for f in stiffness_files(fx.path):
        _edit(f, lambda ds: ds.__setitem__("PixelSpacing", pydicom.DataElement(0x00280030, "DS", f"{spacing}\\{spacing}")))
    with pytest.raises(SeriesError, match="PixelSpacing") as err:
        process_exam(fx.path, roi)
    _one_line(err.value)


def test_result_json_never_holds_infinity(ge, tmp_path):
    fx, roi, _ = ge
    result = process_exam(fx.path, roi)
    result.measurement.pooled.area_cm2 = float("inf")
    result.measurement.pooled.mean_kpa = float("nan")
    write_results(result, tmp_path / "out")
    payload = json.loads((tmp_path / "out" / "result.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in result.json"))
    assert payload["roi_area_cm2"] is None and payload["mean_kpa"] is None


# ------------------------------------------------------------------ command line hygiene
def test_cli_failure_is_exactly_one_printable_line(tmp_path, capsys):
    weird = tmp_path / "exam\x1b[31mred"
    weird.mkdir()
    (weird / "junk\x1b[2J.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"x" * 40)
    code = main(["measure", str(weird), "--out", str(tmp_path / "o"), "--roi", str(tmp_path / "none.nrrd")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "\x1b" not in err


def test_cli_inspect_with_undecodable_folder_name(ge, tmp_path, capsys):
    import os

    fx, _, _ = ge
    odd = tmp_path / os.fsdecode(b"bad\xffname")
    fx.path.rename(odd)
    assert main(["inspect", str(odd)]) == 0
    out = capsys.readouterr().out
    assert "Stiffness" in out and "\udcff" not in out


def test_cli_warnings_do_not_reach_stderr(ge, tmp_path, capsys):
    fx, roi, _ = ge
    for f in stiffness_files(fx.path):
        _edit(f, lambda ds: ds.__setitem__("SliceThickness", pydicom.DataElement(0x00180050, "DS", "nan")))
    assert main(["-q", "measure", str(fx.path), "--out", str(tmp_path / "o"), "--roi", str(roi)]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ the campaign, bounded
def test_seeded_fuzz_campaign_finds_no_crash_stall_or_silent_change(tmp_path):
    logging.disable(logging.CRITICAL)
    try:
        bases = prepare_base_exams(tmp_path / "bases")
        report = run_campaign(bases, tmp_path / "work", iterations=240, seed=20261129, stall_seconds=20.0)
        heavy = run_campaign(bases, tmp_path / "heavy", iterations=4, seed=7, include_heavy=True, stall_seconds=20.0)
    finally:
        logging.disable(logging.NOTSET)
    for r in (report, heavy):
        assert r.counts["unhandled"] == 0, [o.detail for o in r.unhandled]
        assert r.counts["stall"] == 0, [o.detail for o in r.stalls]
        assert r.silent_meaning == [], [o.detail for o in r.silent_meaning]
    assert report.counts["result"] > 0 and report.counts["typed_error"] > 0  # the mutations bite and the reader survives
    assert len(report.by_mutation) >= 15
    assert peak_memory_mb() < 4000
    assert np.isfinite(report.slowest_seconds)


def test_special_files_beside_an_exam_are_skipped_before_any_open(ge, tmp_path):
    """A FIFO, a socket and a symlink to /dev/zero in the exam's folder (a PACS drop folder can hold
    them): the scan skips them by type, so nothing blocks on open(), and the exam measures as before.
    Run in a child process with a timeout, since a regression hangs rather than fails."""
    import os
    import socket
    import subprocess
    import sys

    fx, roi, _ = ge
    expected = process_exam(fx.path, roi).measurement.mean_kpa
    os.mkfifo(fx.path / "drop.fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(fx.path / "drop.sock"))
    (fx.path / "zero.dcm").symlink_to("/dev/zero")
    try:
        code = (
            "import sys; from mrefibrosis.reading.series import scan_folder; s = scan_folder(sys.argv[1]); "
            "print(s.skipped.get('not a regular file (FIFO, socket or device)', 0), s.files_seen)"
        )
        run = subprocess.run([sys.executable, "-c", code, str(fx.path)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        special, seen = (int(v) for v in run.stdout.split())
        assert special == 2  # the FIFO and the socket; the symlink is never followed
        assert process_exam(fx.path, roi).measurement.mean_kpa == pytest.approx(expected, rel=1e-9)
    finally:
        server.close()
