"""ROI files in every supported format land on the right elastogram pixels; ours open in Slicer."""

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
import vtk
from slicer_helpers import LPS_TO_RAS, read_segmentation, write_segmentation

from mrefibrosis.errors import RoiError
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import LIVER_SCT, read_roi, write_seg_nrrd


@pytest.fixture(scope="module")
def exam(ge_exam):
    return read_exam(ge_exam.path)


def _roi(shape):
    roi = np.zeros(shape, bool)
    roi[1, 20:30, 10:25] = True
    roi[2, 22:28, 12:20] = True
    roi[3, 30:33, 40:44] = True
    return roi


def test_written_seg_nrrd_opens_in_slicer_aligned(tmp_path, exam):
    roi = _roi(exam.geometry.shape)
    path = tmp_path / "roi.seg.nrrd"
    write_seg_nrrd(path, roi, exam.geometry)
    node, segment, arr, ijk_to_ras, ext = read_segmentation(path)
    np.testing.assert_allclose(ijk_to_ras, LPS_TO_RAS @ exam.geometry.ijk_to_lps(), atol=1e-6)
    i0, i1, j0, j1, k0, k1 = ext
    expected = roi[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1]
    np.testing.assert_array_equal(arr > 0, expected)
    assert roi.sum() == (arr > 0).sum()
    tag = vtk.reference("")
    assert segment.GetTag("TerminologyEntry", tag) and f"^{LIVER_SCT}^" in str(tag)
    assert read_roi(path, exam.geometry).tolist() == roi.tolist()


def test_slicer_saved_segmentation_cropped_and_renamed(tmp_path, exam):
    roi = _roi(exam.geometry.shape)
    path = tmp_path / "edited.seg.nrrd"
    write_segmentation(path, roi, exam.geometry.ijk_to_lps(), name="my renamed liver")
    header = nrrd.read_header(str(path))
    # Slicer stores only the segment's extent: the file's grid is a crop with its own origin
    assert list(map(int, header["sizes"]))[-3:] != [exam.geometry.columns, exam.geometry.rows, exam.geometry.n_slices]
    assert header["Segment0_Name"] == "my renamed liver"
    np.testing.assert_array_equal(read_roi(path, exam.geometry), roi)


def test_nifti_on_finer_grid_maps_by_physical_position(tmp_path, exam):
    g = exam.geometry
    roi = _roi(g.shape)
    fine = np.repeat(np.repeat(roi, 2, axis=1), 2, axis=2)  # (k, 2j, 2i), half the pixel size
    img = sitk.GetImageFromArray(fine.astype(np.uint8))
    img.SetSpacing((g.column_spacing_mm / 2, g.row_spacing_mm / 2, g.slice_step_mm))
    # first fine pixel centre lies a quarter pixel before the coarse one
    origin = g.positions[0] - 0.25 * g.row_direction * g.column_spacing_mm - 0.25 * g.column_direction * g.row_spacing_mm
    img.SetOrigin(tuple(origin))
    path = tmp_path / "roi.nii.gz"
    sitk.WriteImage(img, str(path))
    np.testing.assert_array_equal(read_roi(path, g), roi)


def test_plain_labelmap_in_ras_space(tmp_path, exam):
    g = exam.geometry
    roi = _roi(g.shape)
    m = LPS_TO_RAS @ g.ijk_to_lps()
    header = {"space": "right-anterior-superior", "space directions": m[:3, :3].T, "space origin": m[:3, 3], "kinds": ["domain"] * 3}
    path = tmp_path / "label.nrrd"
    nrrd.write(str(path), np.transpose(roi, (2, 1, 0)).astype(np.uint8) * 3, header)
    np.testing.assert_array_equal(read_roi(path, g), roi)


def _write_seg(path, ge_exam, pixel_array, seg_type, **extra):
    import highdicom as hd
    import pydicom

    files = sorted((ge_exam.path / "series_0500").iterdir())
    sources = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    desc = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Liver ROI",
        segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure"),
        segmented_property_type=hd.sr.CodedConcept(LIVER_SCT, "SCT", "Liver"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, seg_type),
        segment_descriptions=[desc],
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        **extra,
    )
    seg.save_as(path)
    return path


def test_dicom_seg_from_highdicom(tmp_path, ge_exam, exam):
    roi = _roi(exam.geometry.shape)
    path = _write_seg(tmp_path / "roi_seg.dcm", ge_exam, roi.astype(np.uint8), "BINARY", omit_empty_frames=True)
    np.testing.assert_array_equal(read_roi(path, exam.geometry), roi)


def test_fractional_dicom_seg_counts_pixels_from_half(tmp_path, ge_exam, exam):
    """A probability map: 0.4 is not ROI (it was read as ROI before), 0.6 is."""
    roi = _roi(exam.geometry.shape)
    half = np.zeros(roi.shape, bool)
    half[:, : roi.shape[1] // 2] = True
    prob = np.where(roi & half, 0.6, np.where(roi, 0.4, 0.0)).astype(np.float32)
    path = _write_seg(tmp_path / "frac.dcm", ge_exam, prob, "FRACTIONAL", max_fractional_value=255)
    np.testing.assert_array_equal(read_roi(path, exam.geometry), roi & half)
    only_low = _write_seg(tmp_path / "low.dcm", ge_exam, np.where(roi, 0.4, 0.0).astype(np.float32), "FRACTIONAL", max_fractional_value=255)
    assert not read_roi(only_low, exam.geometry).any()


def test_labelmap_dicom_seg(tmp_path, ge_exam, exam):
    import highdicom as hd

    if not hasattr(hd.seg.SegmentationTypeValues, "LABELMAP"):
        pytest.skip("this highdicom writes no LABELMAP SEG")
    roi = _roi(exam.geometry.shape)
    path = _write_seg(tmp_path / "labelmap.dcm", ge_exam, roi.astype(np.uint8), "LABELMAP")
    np.testing.assert_array_equal(read_roi(path, exam.geometry), roi)


def test_roi_elsewhere_is_refused(tmp_path, exam):
    g = exam.geometry
    far = g.ijk_to_lps().copy()
    far[:3, 3] += 5000.0
    header = {"space": "left-posterior-superior", "space directions": far[:3, :3].T, "space origin": far[:3, 3], "kinds": ["domain"] * 3}
    path = tmp_path / "far.nrrd"
    nrrd.write(str(path), np.ones((4, 4, 2), np.uint8), header)
    with pytest.raises(RoiError, match="does not overlap"):
        read_roi(path, g)
    bad = tmp_path / "junk.seg.nrrd"
    bad.write_bytes(b"NRRD0004\nthis is not nrrd\n")
    with pytest.raises(RoiError):
        read_roi(bad, g)


def test_empty_segmentation_reads_as_no_roi(tmp_path, exam):
    """A reader who draws nothing (a technical failure) hands over an empty segmentation: it reads
    as an empty mask and the exam measures as indeterminate, not as an alignment error."""
    from mrefibrosis.measure.roi_stats import measure_roi

    path = tmp_path / "empty.seg.nrrd"
    write_seg_nrrd(path, np.zeros(exam.geometry.shape, bool), exam.geometry)
    mask = read_roi(path, exam.geometry)
    assert mask.shape == exam.geometry.shape and not mask.any()
    assert measure_roi(exam, mask, "seed").status == "indeterminate"
