"""The reader against arrays written by the fixtures: units, masks, geometry, classification."""

import numpy as np
import pydicom
import pytest
from fixtures import make_ge_exam, make_siemens_exam

from mrefibrosis.errors import UnitError
from mrefibrosis.reading import classify as roles
from mrefibrosis.reading.exam_loader import ReadOptions, classify_all, read_exam
from mrefibrosis.reading.series import scan_folder
from mrefibrosis.synth.vendor_dicom import StudyContext, axial_stack, write_ge_exam


def test_ge_values_masks_and_geometry(ge_exam):
    exam = read_exam(ge_exam.path)
    s = ge_exam.stiffness_pa
    assert exam.vendor == "GE"
    assert exam.stiffness_kpa.dtype == np.float32
    expected_valid = (s != 0) & (s != 32766)
    np.testing.assert_array_equal(exam.valid, expected_valid)
    np.testing.assert_allclose(exam.stiffness_kpa[expected_valid], s[expected_valid] / 1000.0, rtol=1e-6)
    np.testing.assert_array_equal(exam.confidence_valid, (ge_exam.confidence >= 950) & expected_valid)
    assert exam.driver_frequency_hz == 60
    # magnitude: the raw series' second half, averaged over the 4 phase offsets
    np.testing.assert_allclose(exam.magnitude, ge_exam.magnitude.astype(np.float32).mean(axis=1), rtol=1e-5)
    g = exam.geometry
    assert g.shape == s.shape
    assert g.row_spacing_mm == pytest.approx(6.25) and g.column_spacing_mm == pytest.approx(6.25)
    locs = g.slice_locations_mm
    assert np.all(np.diff(locs) > 0), "slices must be ordered by position"
    np.testing.assert_allclose(np.diff(locs), 11.0)
    np.testing.assert_allclose(g.positions[:, 2], np.sort(ge_exam.stack.positions[:, 2]))


def test_ge_classification(ge_exam):
    scan = scan_folder(ge_exam.path)
    classify_all(scan.series, ReadOptions())
    found = {s.series_number: s.role for s in scan.series}
    assert found == {500: roles.STIFFNESS, 501: roles.RAW_MRE, 507: roles.CONFIDENCE}


def _confidence_agreement(exam, fx):
    truth = ~fx.low_confidence & (fx.elastogram_10pa > 0)
    got = exam.confidence_valid
    inter = (truth & got).sum()
    return inter / (truth | got).sum(), (got & ~truth).sum() / max(1, got.sum())


@pytest.mark.parametrize("neutral", [False, True])
def test_siemens_twin_hatch_gives_confidence(tmp_path, neutral):
    fx = make_siemens_exam(tmp_path, neutral_names=neutral)
    exam = read_exam(tmp_path)
    assert exam.vendor == "SIEMENS"
    np.testing.assert_allclose(exam.stiffness_kpa[exam.valid], fx.elastogram_10pa[exam.valid] / 100.0, rtol=1e-6)
    # hatch pixels and background are invalid; all other body pixels are valid
    hatch = fx.masked_10pa != fx.elastogram_10pa
    np.testing.assert_array_equal(exam.valid, (fx.elastogram_10pa > 0) & ~hatch)
    iou, false_valid = _confidence_agreement(exam, fx)
    assert iou > 0.9
    assert false_valid < 0.05
    assert "twin" in exam.confidence_source


@pytest.mark.parametrize("hatch_value", [800, 0])
def test_siemens_masked_only_white_or_black_hatch(tmp_path, hatch_value):
    fx = make_siemens_exam(tmp_path, twin=False, hatch_value=hatch_value, color=True)
    exam = read_exam(tmp_path)
    iou, false_valid = _confidence_agreement(exam, fx)
    assert iou > 0.88
    assert false_valid < 0.05
    inside = exam.valid & ~fx.low_confidence
    np.testing.assert_allclose(exam.stiffness_kpa[inside], fx.elastogram_10pa[inside] / 100.0, rtol=1e-6)


def _ge_with_header_changes(tmp_path, change):
    rng = np.random.default_rng(5)
    stiff = rng.integers(1000, 5000, size=(2, 32, 32)).astype(np.int16)
    conf = np.full((2, 32, 32), 990, np.int16)
    write_ge_exam(tmp_path, StudyContext("units", "GE MEDICAL SYSTEMS", "X"), axial_stack(2, 32, 32, 2.0, 10, 1), stiff, conf)
    for f in (tmp_path / "series_0500").iterdir():
        ds = pydicom.dcmread(f)
        change(ds)
        ds.save_as(f)
    return stiff


def test_real_world_value_mapping_in_kpa(tmp_path):
    from pydicom.dataset import Dataset

    def change(ds):
        item = Dataset()
        item.RealWorldValueSlope = 0.002
        item.RealWorldValueIntercept = 0.0
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "kPa", "UCUM", "kilopascal"
        item.MeasurementUnitsCodeSequence = [code]
        item.LUTLabel = "STIFF"
        item.RealWorldValueFirstValueMapped = 0
        item.RealWorldValueLastValueMapped = 32767
        ds.RealWorldValueMappingSequence = [item]

    stiff = _ge_with_header_changes(tmp_path, change)
    exam = read_exam(tmp_path)
    np.testing.assert_allclose(exam.stiffness_kpa, stiff[::-1] * 0.002, rtol=1e-5)
    assert "Real World" in exam.unit_source


def test_rescale_type_names_unit(tmp_path):
    def change(ds):
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 0.0005, 0, "kPa"

    stiff = _ge_with_header_changes(tmp_path, change)
    exam = read_exam(tmp_path)
    np.testing.assert_allclose(exam.stiffness_kpa, stiff[::-1] * 0.0005, rtol=1e-5)
    assert "RescaleType kpa" in exam.unit_source


def test_unit_override_and_unknown_vendor(tmp_path):
    def change(ds):
        ds.Manufacturer = "ACME"
        del ds.WindowCenter
        del ds.WindowWidth

    stiff = _ge_with_header_changes(tmp_path, change)
    # ACME without the GE private tag on these derived series: no default unit
    with pytest.raises(UnitError, match="--stiffness-unit"):
        read_exam(tmp_path, ReadOptions())
    exam = read_exam(tmp_path, ReadOptions(stiffness_unit="Pa"))
    np.testing.assert_allclose(exam.stiffness_kpa, stiff[::-1] / 1000.0, rtol=1e-6)


@pytest.mark.parametrize("window,factor", [((4000, 8000), 1e-3), ((400, 800), 1e-2), ((4, 8), 1.0)])
def test_unit_from_display_window_for_unverified_vendors(tmp_path, window, factor):
    def change(ds):
        ds.Manufacturer = "ACME"
        ds.WindowCenter, ds.WindowWidth = window

    stiff = _ge_with_header_changes(tmp_path, change)
    if factor > 1e-3:  # 1000-5000 stored values read as 10 Pa or kPa are implausible: refused, not guessed
        with pytest.raises(UnitError, match="implausible"):
            read_exam(tmp_path)
        return
    exam = read_exam(tmp_path)
    np.testing.assert_allclose(exam.stiffness_kpa, stiff[::-1] * factor, rtol=1e-5)
    assert "window" in exam.unit_source


def test_siemens_in_pa_with_a_pa_window(tmp_path):
    def change(ds):
        ds.Manufacturer = "SIEMENS"  # assumed 10 Pa default yields to the 0-8000 Pa display window
        ds.WindowCenter, ds.WindowWidth = 4000, 8000

    stiff = _ge_with_header_changes(tmp_path, change)
    exam = read_exam(tmp_path)
    np.testing.assert_allclose(exam.stiffness_kpa, stiff[::-1] / 1000.0, rtol=1e-5)


def test_implausible_default_unit_refused(tmp_path):
    def change(ds):
        ds.Manufacturer = "SIEMENS"  # 10 Pa default would turn 1000-5000 into 10-50 kPa
        del ds.WindowCenter
        del ds.WindowWidth

    _ge_with_header_changes(tmp_path, change)
    with pytest.raises(UnitError, match="implausible"):
        read_exam(tmp_path)


def test_series_selection_by_number_and_uid(ge_exam):
    exam = read_exam(ge_exam.path, ReadOptions(stiffness_series="500", confidence_series="507"))
    assert exam.series_used[0].series_number == 500
    uid = pydicom.dcmread(next((ge_exam.path / "series_0500").iterdir())).SeriesInstanceUID
    assert read_exam(ge_exam.path, ReadOptions(stiffness_series=uid)).series_used[0].series_number == 500


def _enhanced(path, frames, positions, description, window, manufacturer="SIEMENS", image_type=("DERIVED", "PRIMARY", "ELASTO")):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.3.4.5.6.7"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 20 if "mask" not in description.lower() else 21
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.SeriesDescription = description
    ds.ImageType = list(image_type)
    ds.WindowCenter, ds.WindowWidth = window
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    shared = Dataset()
    ori = Dataset()
    ori.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    meas = Dataset()
    meas.PixelSpacing = [1.8, 1.8]
    meas.SliceThickness = 8
    shared.PlaneOrientationSequence = [ori]
    shared.PixelMeasuresSequence = [meas]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    for p in positions:
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = list(p)
        item.PlanePositionSequence = [pos]
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = per
    ds.PixelData = frames.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe_elastograms(tmp_path):
    """Siemens XA-style enhanced multi-frame files: geometry from functional groups, frames unordered."""
    from mrefibrosis.reading.hatch import draw_hatch

    rng = np.random.default_rng(3)
    el = rng.integers(150, 500, size=(3, 40, 48)).astype(np.uint16)
    low = np.zeros(el.shape, bool)
    low[:, :, 30:] = True
    masked = draw_hatch(el, low, 800, period=8)
    positions = [(0, 0, 20.0), (0, 0, 0.0), (0, 0, 10.0)]  # stored out of order
    _enhanced(tmp_path / "a.dcm", el, positions, "MRE elastogram", (400, 800))
    _enhanced(tmp_path / "b.dcm", masked, positions, "MRE elastogram 95% masked", (400, 800))
    exam = read_exam(tmp_path)
    order = [1, 2, 0]
    np.testing.assert_allclose(exam.geometry.slice_locations_mm, [0, 10, 20])
    assert exam.geometry.row_spacing_mm == pytest.approx(1.8)
    sel = exam.valid
    np.testing.assert_allclose(exam.stiffness_kpa[sel], el[order][sel] / 100.0, rtol=1e-6)
    assert exam.confidence_valid[:, :, :20].mean() > 0.9 and exam.confidence_valid[:, :, 32:].mean() < 0.05


@pytest.mark.parametrize(
    "image_type, source",
    [
        (["ORIGINAL", "PRIMARY", "MRE", "P"], "Philips MRE"),
        (["ORIGINAL", "PRIMARY", "MRE", "M_SE"], "Philips MRE"),
        (["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"], "Siemens research MOSAIC"),
    ],
)
def test_raw_only_exports_say_what_is_missing(tmp_path, image_type, source):
    """Phase/magnitude without any elastogram (Philips raw, Siemens MOSAIC research data)."""
    from mrefibrosis.errors import ExamNotFoundError
    from mrefibrosis.reading.inspect_report import inspect_report

    fx = make_ge_exam(tmp_path / "ge", seed=31)
    for f in sorted(p for p in fx.path.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(f)
        if str(ds.SeriesDescription) in ("Stiffness", "Confidence"):
            f.unlink()
            continue
        ds.Manufacturer = "Philips Medical Systems" if "MRE" in image_type else "SIEMENS"
        ds.ImageType = image_type
        ds.pop((0x0019, 0x109C), None)  # no GE MR-Touch tag
        ds.save_as(f, enforce_file_format=False)
    with pytest.raises(ExamNotFoundError, match="raw MRE images") as err:
        read_exam(fx.path)
    assert "no elastogram" in str(err.value) and "\n" not in str(err.value)
    assert source in inspect_report(fx.path, ReadOptions())


def test_assumed_signatures_are_configurable(ge_exam):
    from mrefibrosis.reading.classify import ASSUMED_SIGNATURES, STIFFNESS, Signature

    # a site whose elastograms carry ImageType MMDI3D\STIFFNESS (Resoundant) is recognised by default
    assert any(s.tokens == frozenset({"MMDI3D", "STIFFNESS"}) and s.role == STIFFNESS for s in ASSUMED_SIGNATURES)
    # and a site can declare its own: here the GE raw series' ImageType claims to be an elastogram
    mine = (Signature("site rule", frozenset({"ORIGINAL", "PRIMARY", "OTHER"}), "other"),)
    exam = read_exam(ge_exam.path, ReadOptions(signatures=mine))
    assert exam.magnitude is None  # the raw series is now 'other': no magnitude taken from it
