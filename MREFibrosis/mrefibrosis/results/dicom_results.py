"""Build the DICOM SEG, TID 1500 SR and RGB overlay of one measured exam with highdicom.

UIDs derive from the StudyInstanceUID and the software/model version, so sending the same results
again (a resend, a restarted worker) yields the same instances instead of duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from .. import __version__
from ..errors import OutputError
from . import sr_codes as codes
from .colour_map import colour_elastogram
from .dicom_result_files import MANUFACTURER, OVERLAY_NAME, SEG_NAME, SR_NAME
from .dicom_uids import det_uid
from .exam_result import ExamResult, RoiKind
from .staged_files import staged_outputs

SERIES_SEG, SERIES_SR, SERIES_OVERLAY = 9701, 9702, 9703


@dataclass
class DicomResults:
    seg: Dataset
    sr: Dataset
    overlays: list[Dataset]
    tracking_uid: str


def _automatic(result: ExamResult) -> bool:
    return result.provenance.roi_source.kind is RoiKind.AUTOMATIC


def _version_key(result: ExamResult) -> str:
    model = result.provenance.model if _automatic(result) else None
    return f"{__version__}/{model.model_version if model else 'manual'}/{model.sha256[:16] if model else ''}"


UNNAMED_READER = "Reader^Unnamed"  # a person edited the ROI but gave no name (DICOM PN: family^given)


def reader_name(name: str | None) -> str | None:
    """A reader's name as DICOM stores a person (PN): printable, at most 64 characters, no backslash."""
    if name is None:
        return None
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 64 or "\\" in cleaned or not cleaned.isprintable():
        raise OutputError("the reader's name must be 1-64 printable characters without a backslash, e.g. 'Doe^Jane'.")
    return cleaned


def build_dicom_results(result: ExamResult, reader: str | None = None) -> DicomResults:
    """SEG, SR and overlays for one result. When a person edited the ROI (Slicer, the review page),
    the SR names that person as observer, `reader` or 'unnamed' when no name was given, beside the
    software that measured; an untouched automatic ROI has the device alone."""
    reader = reader_name(reader)
    try:
        import highdicom as hd
    except ImportError:
        raise OutputError("DICOM results need highdicom: pip install 'mrefibrosis[dicom]'.") from None

    exam = result.exam
    sources = exam.source_headers
    if len(sources) != exam.n_slices:
        raise OutputError("DICOM results need the exam read from its DICOM files; measure the exam folder with the CLI.")
    study_uid = str(sources[0].StudyInstanceUID)
    key = (study_uid, _version_key(result))
    tracking_uid = det_uid(*key, "tracking")
    automatic = _automatic(result)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="MREFibrosis",
        version=__version__,
        family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing")
        if not automatic
        else hd.sr.CodedConcept("UNET", codes.PRIVATE_SCHEME, "U-Net segmentation"),
    )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Liver MRE ROI",
        segmented_property_category=codes.ANATOMICAL_STRUCTURE,
        segmented_property_type=codes.LIVER,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=tracking_uid,
        tracking_id="Liver MRE ROI",
    )
    mask = result.roi.astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=det_uid(*key, "seg-series"),
        series_number=SERIES_SEG,
        sop_instance_uid=det_uid(*key, "seg"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="MREFibrosis",
        software_versions=__version__,
        device_serial_number="0",
        series_description="MRE liver ROI (MREFibrosis)",
        omit_empty_frames=bool(mask.any()),
    )
    sr = _build_sr(result, seg, sources, key, tracking_uid, reader)
    overlays = _build_overlays(result, sources, key)
    return DicomResults(seg, sr, overlays, tracking_uid)


def _build_sr(result: ExamResult, seg, sources, key, tracking_uid, reader: str | None = None):
    import highdicom as hd

    m = result.measurement
    algorithm = hd.sr.AlgorithmIdentification(name="MREFibrosis", version=__version__)
    referenced = hd.sr.ReferencedSegment(  # built by hand: from_segmentation fails on single-segment SEGs
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        segment_number=1,
        source_images=[hd.sr.SourceImageForSegmentation(s.SOPClassUID, s.SOPInstanceUID) for s in sources],
    )
    measurements = []
    evaluations = [hd.sr.QualitativeEvaluation(codes.MEASUREMENT_STATUS, codes.status_code(m.status))]
    if m.reason_flag:  # why indeterminate, as the other outputs say it
        evaluations.append(hd.sr.QualitativeEvaluation(codes.STATUS_REASON, codes.reason_code(m.reason_flag, m.reason or m.reason_flag)))
    for flag in result.warnings:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.STATUS_WARNING, codes.reason_code(flag, flag.replace("_", " "))))
    if m.status == "ok":
        for derivation, value in ((codes.MEAN, m.mean_kpa), (codes.MEDIAN, m.median_kpa)):
            measurements.append(
                hd.sr.Measurement(
                    name=codes.ELASTICITY,
                    value=float(value),
                    unit=codes.KPA,
                    derivation=derivation,
                    algorithm_id=algorithm,
                    finding_sites=[hd.sr.FindingSite(codes.LIVER)],
                )
            )
        measurements.append(hd.sr.Measurement(name=codes.AREA, value=float(m.pooled.area_cm2), unit=codes.CM2, algorithm_id=algorithm))
        # how much of the exam the number covers (a number built on part of the exam says so)
        for name, value in ((codes.SLICES_MEASURED, m.slices_measured), (codes.SLICES_IN_EXAM, m.slices_total)):
            measurements.append(hd.sr.Measurement(name=name, value=float(value), unit=codes.SLICES, algorithm_id=algorithm))
        if m.stage is not None:
            evaluations.append(hd.sr.QualitativeEvaluation(codes.FIBROSIS_STAGE, codes.stage_code(m.stage, m.preset)))
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier="Liver MRE ROI"),
        referenced_segment=referenced,
        finding_type=codes.LIVER,
        algorithm_id=algorithm,
        finding_sites=[hd.sr.FindingSite(codes.LIVER)],
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=det_uid("MREFibrosis", __version__, "device"), name="MREFibrosis", manufacturer_name=MANUFACTURER
        ),
    )
    person = None
    if result.provenance.roi_source.kind is RoiKind.EDITED:
        person = hd.sr.ObserverContext(
            observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=reader or UNNAMED_READER),
        )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person, observer_device_context=observer),
        procedure_reported=codes.MRE_PROCEDURE,
        imaging_measurements=[group],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[seg, *sources],
        content=report[0],
        series_instance_uid=det_uid(*key, "sr-series"),
        series_number=SERIES_SR,
        sop_instance_uid=det_uid(*key, "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="MRE liver stiffness report (MREFibrosis)",
    )


def _overlay_text(result: ExamResult) -> list[str]:
    m = result.measurement
    if m.status == "ok":
        stage = m.stage or "not staged"
        first = f"Liver stiffness {m.mean_kpa:.2f} kPa (median {m.median_kpa:.2f})"
        second = f"ROI {m.pooled.area_cm2:.1f} cm2, stage {stage} [{m.preset}]"
        if m.coverage_text:
            second += f", {m.slices_measured} of {m.slices_total} slices"
    else:
        first, second = "Liver stiffness: INDETERMINATE", (m.reason or "")[:60]
    return [first, second, f"MREFibrosis {__version__} - automatic, verify before use"]


def _build_overlays(result: ExamResult, sources, key) -> list:
    import highdicom as hd
    from PIL import Image, ImageDraw
    from scipy import ndimage

    exam = result.exam
    lines = _overlay_text(result)
    out = []
    for k, src in enumerate(sources):
        rgb = colour_elastogram(np.where(exam.valid[k], exam.stiffness_kpa[k], 0))
        edge = result.roi[k] & ~ndimage.binary_erosion(result.roi[k])
        rgb[edge] = [255, 255, 255]
        img = Image.fromarray(np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1))  # 2x for legible text
        draw = ImageDraw.Draw(img)
        for n, text in enumerate(lines):
            draw.text((6, 6 + 12 * n), text, fill=(255, 255, 255))
        pixels = np.asarray(img)
        spacing = [float(v) / 2.0 for v in src.PixelSpacing]
        sc = hd.sc.SCImage(
            pixel_array=pixels,
            photometric_interpretation="RGB",
            bits_allocated=8,
            coordinate_system="PATIENT",
            study_instance_uid=src.StudyInstanceUID,
            series_instance_uid=det_uid(*key, "sc-series"),
            series_number=SERIES_OVERLAY,
            sop_instance_uid=det_uid(*key, "sc", k),
            instance_number=k + 1,
            manufacturer=MANUFACTURER,
            patient_id=src.get("PatientID"),
            patient_name=src.get("PatientName"),
            patient_birth_date=src.get("PatientBirthDate"),
            patient_sex=src.get("PatientSex") or None,
            accession_number=src.get("AccessionNumber"),
            study_id=src.get("StudyID"),
            study_date=src.get("StudyDate"),
            study_time=src.get("StudyTime"),
            referring_physician_name=src.get("ReferringPhysicianName"),
            pixel_spacing=spacing,
            patient_orientation=("L", "P"),
            series_description="MRE liver stiffness overlay (MREFibrosis)",
        )
        sc.Laterality = ""  # Type 2C in General Series; empty: the liver is not a paired organ
        out.append(sc)
    return out


def write_dicom_results(result: ExamResult, out_dir: str | os.PathLike) -> list[Path]:
    """SEG.dcm, SR.dcm and OVERLAY_NNN.dcm in out_dir (all or nothing), zeroed preambles."""
    return save_dicom_results(build_dicom_results(result), out_dir)


def save_dicom_results(res: DicomResults, out_dir: str | os.PathLike) -> list[Path]:
    with staged_outputs(out_dir) as out:
        res.seg.save_as(out.path(SEG_NAME), enforce_file_format=True)
        res.sr.save_as(out.path(SR_NAME), enforce_file_format=True)
        for k, sc in enumerate(res.overlays):
            sc.save_as(out.path(OVERLAY_NAME.format(k)), enforce_file_format=True)
        names = list(out.names)
    return [Path(out_dir) / n for n in names]
