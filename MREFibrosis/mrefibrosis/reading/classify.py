"""Decide what each series of an MRE exam holds.

Series names differ between sites and software versions, so names are one clue among several:
ImageType, photometric interpretation, vendor private tags and, where headers are ambiguous,
the pixel values themselves (see ``exam_reader.resolve_by_content``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .series import SeriesInfo

STIFFNESS = "stiffness"
MASKED_STIFFNESS = "masked_stiffness"
CONFIDENCE = "confidence"
WAVE = "wave"
MAGNITUDE = "magnitude"
PHASE = "phase"
RAW_MRE = "raw_mre"
RAW_RESEARCH = "raw_research"  # research raw data (Siemens MOSAIC volumes): never measured
COLOR = "color_elastogram"
DERIVED_UNKNOWN = "derived_unknown"
OTHER = "other"

MEASURABLE = (STIFFNESS, MASKED_STIFFNESS)
RAW_ROLES = (PHASE, MAGNITUDE, RAW_MRE, WAVE, RAW_RESEARCH)  # acquisitions an elastogram is computed from


@dataclass(frozen=True)
class Signature:
    """ImageType tokens that together mark a series' role for one vendor or program."""

    source: str
    tokens: frozenset
    role: str
    verified: bool = False  # checked on a real scanner file (the others are assumed)


# From a public series classifier (docs: mre-domain.md section 7): **assumed** unless marked verified
# (the MOSAIC one: checked on a real Siemens Prisma raw export, shared/data/siemens-brain-mre-raw), so a
# site can pass its own list (ReadOptions.signatures). Checked in order; first match wins.
ASSUMED_SIGNATURES: tuple[Signature, ...] = (
    Signature("Resoundant MMDI3D", frozenset({"MMDI3D", "STIFFNESS"}), STIFFNESS),
    Signature("Resoundant MMDI3D", frozenset({"MMDI3D", "CONFIDENCE"}), CONFIDENCE),
    Signature("Resoundant MMDI3D", frozenset({"MMDI3D", "MAGRMS"}), MAGNITUDE),
    Signature("Resoundant MMDI3D", frozenset({"MMDI3D", "PHSDIFFZ"}), PHASE),
    Signature("Philips MRE", frozenset({"MRE", "P"}), PHASE),
    Signature("Philips MRE", frozenset({"MRE", "M_SE"}), MAGNITUDE),
    Signature("Philips MRE", frozenset({"MRE", "FFE"}), MAGNITUDE),
    Signature("Siemens research MOSAIC", frozenset({"MOSAIC"}), RAW_RESEARCH, verified=True),
)

_STIFF_WORDS = ("stiff", "elasto", "kpa", "shear modulus", "mre map", "elastogram")
_CONF_WORDS = ("confidence", "conf ", "conf_", "conf.", "conf-")
_MASK_WORDS = ("mask", "95", "hatch", "conf")
_WAVE_WORDS = ("wave",)


def _has(text: str, words: tuple[str, ...]) -> bool:
    padded = f" {text} "
    return any(w in padded for w in words)


def classify(info: SeriesInfo, signatures: tuple[Signature, ...] = ASSUMED_SIGNATURES) -> tuple[str, str]:
    """Return (role, reason); the reason is shown by `inspect` so users see why."""
    name = info.description.lower()
    image_type = set(info.image_type)
    if info.modality.upper() in ("SEG", "RTSTRUCT", "PR", "KO", "SR") or info.manufacturer == "MREFibrosis":
        return OTHER, f"{info.modality or 'derived'} object or MREFibrosis result, not an MRE image"
    if info.is_color:
        return COLOR, f"colour image ({info.photometric}, {info.samples_per_pixel} samples): shown, never measured"
    for sig in signatures:
        if sig.tokens <= image_type:
            return (
                sig.role,
                f"ImageType holds {'/'.join(sorted(sig.tokens))}: {sig.source} {sig.role.replace('_', ' ')} ({'verified' if sig.verified else 'assumed'} signature)",
            )
    if info.private_mre_tag.upper().replace(" ", "") == "MR-TOUCH" and "ORIGINAL" in image_type:
        return RAW_MRE, "GE private (0019,109C) = MR-Touch on an ORIGINAL series: phase then magnitude images"
    seq = info.sequence_name.lower()
    component = info.complex_component.upper()
    if "WV" in image_type:
        return WAVE, "ImageType holds WV (Siemens wave images)"
    if ("greMR" in info.sequence_name or "gremr" in seq or "ELASTO" in image_type) and "DERIVED" not in image_type:
        if "P" in image_type or component == "PHASE":
            return PHASE, "ImageType P / ComplexImageComponent PHASE on an MRE GRE acquisition"
        if "M" in image_type or component == "MAGNITUDE":
            return MAGNITUDE, "ImageType M / ComplexImageComponent MAGNITUDE on an MRE GRE acquisition"
    if _has(name, _WAVE_WORDS):
        return WAVE, "description names wave images"
    if _has(name, _CONF_WORDS) and not _has(name, _STIFF_WORDS):
        return CONFIDENCE, "description names a confidence map"
    if _has(name, _STIFF_WORDS):
        if _has(name, _MASK_WORDS):
            return MASKED_STIFFNESS, "description names a confidence-masked elastogram"
        return STIFFNESS, "description names a stiffness map / elastogram"
    if "DERIVED" in image_type or "SECONDARY" in image_type:
        return DERIVED_UNKNOWN, "derived grayscale series with an unfamiliar name: decided from pixel values"
    if "M" in image_type and info.modality == "MR":
        return MAGNITUDE, "ImageType M on an MR series"
    return OTHER, "not an MRE series (no MRE ImageType, private tag or description)"
