"""Codes used in the SEG and SR. Fibrosis stage has no standard code: a private scheme carries it."""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

# Standard codes from pydicom's dictionary (same values and meanings the files have always carried).
LIVER = CodedConcept.from_code(codes.SCT.Liver)
ANATOMICAL_STRUCTURE = CodedConcept.from_code(codes.SCT.AnatomicalStructure)
ELASTICITY = CodedConcept.from_code(codes.DCM.Elasticity)
AREA = CodedConcept.from_code(codes.SCT.Area)
MEAN = CodedConcept.from_code(codes.SCT.Mean)
MEDIAN = CodedConcept.from_code(codes.SCT.Median)
KPA = CodedConcept.from_code(codes.UCUM.Kilopascal)
# Kept by hand: pydicom 3's UCUM.SquareCentimeter means "Centimeter**2"; existing reports say "cm2".
CM2 = CodedConcept("cm2", "UCUM", "cm2")
PRIVATE_SCHEME = "99MREFIB"
MRE_PROCEDURE = CodedConcept("MRELIVER", PRIVATE_SCHEME, "MR elastography of liver")
FIBROSIS_STAGE = CodedConcept("FIBSTAGE", PRIVATE_SCHEME, "Liver fibrosis stage")
MEASUREMENT_STATUS = CodedConcept("MRESTATUS", PRIVATE_SCHEME, "MRE measurement status")
SLICES_MEASURED = CodedConcept("SLICESMEAS", PRIVATE_SCHEME, "Number of slices measured")
SLICES_IN_EXAM = CodedConcept("SLICESEXAM", PRIVATE_SCHEME, "Number of slices in the exam")
SLICES = CodedConcept("{slices}", "UCUM", "slices")


def stage_code(stage: str, preset: str) -> CodedConcept:
    """A private code for a stage label under a preset (CodeValue is limited to 16 characters)."""
    value = "".join(ch for ch in stage.upper() if ch.isalnum() or ch in "-=<>")[:16] or "UNKNOWN"
    return CodedConcept(value, PRIVATE_SCHEME, f"{stage} ({preset} preset)")


STATUS_REASON = CodedConcept("MREREASON", PRIVATE_SCHEME, "MRE measurement status reason")
STATUS_WARNING = CodedConcept("MREWARN", PRIVATE_SCHEME, "MRE measurement warning")


def reason_code(flag: str, meaning: str) -> CodedConcept:
    """A flag as a code: value the flag (16 characters), meaning the reason (64, the LO limit)."""
    return CodedConcept(flag.upper()[:16], PRIVATE_SCHEME, meaning[:64])


def status_code(status: str) -> CodedConcept:
    return CodedConcept(status.upper()[:16], PRIVATE_SCHEME, status)
