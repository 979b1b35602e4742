"""Codes used in the SEG and SR. Fibrosis stage has no standard code: a private scheme carries it."""

from __future__ import annotations

from highdicom.sr import CodedConcept

LIVER = CodedConcept("10200004", "SCT", "Liver")
ANATOMICAL_STRUCTURE = CodedConcept("91723000", "SCT", "Anatomical Structure")
ELASTICITY = CodedConcept("110830", "DCM", "Elasticity")
AREA = CodedConcept("42798000", "SCT", "Area")
MEAN = CodedConcept("373098007", "SCT", "Mean")
MEDIAN = CodedConcept("373099004", "SCT", "Median")
KPA = CodedConcept("kPa", "UCUM", "kPa")
CM2 = CodedConcept("cm2", "UCUM", "cm2")
PRIVATE_SCHEME = "99MREFIB"
MRE_PROCEDURE = CodedConcept("MRELIVER", PRIVATE_SCHEME, "MR elastography of liver")
FIBROSIS_STAGE = CodedConcept("FIBSTAGE", PRIVATE_SCHEME, "Liver fibrosis stage")
MEASUREMENT_STATUS = CodedConcept("MRESTATUS", PRIVATE_SCHEME, "MRE measurement status")


def stage_code(stage: str, preset: str) -> CodedConcept:
    """A private code for a stage label under a preset (CodeValue is limited to 16 characters)."""
    value = "".join(ch for ch in stage.upper() if ch.isalnum() or ch in "-=<>")[:16] or "UNKNOWN"
    return CodedConcept(value, PRIVATE_SCHEME, f"{stage} ({preset} preset)")


def status_code(status: str) -> CodedConcept:
    return CodedConcept(status.upper()[:16], PRIVATE_SCHEME, status)
