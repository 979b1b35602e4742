"""Stored elastogram values -> kPa.

Order of trust: an explicit user override, then the file's Real World Value Mapping, then
RescaleSlope/Intercept (with RescaleType naming the unit when it does), then the vendor default of
the domain notes (GE: Pa, Siemens: 10 Pa, the latter *assumed*), else a refusal naming the override.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from ..errors import UnitError

UNIT_TO_KPA: dict[str, float] = {"Pa": 1e-3, "10Pa": 1e-2, "kPa": 1.0}
UCUM_TO_KPA: dict[str, float] = {"pa": 1e-3, "kpa": 1.0, "hpa": 0.1, "dapa": 1e-2, "10.pa": 1e-2, "10pa": 1e-2, "mpa": 1e3}

# Vendor defaults; the Siemens value is assumed in the domain notes, so it is a parameter.
DEFAULT_VENDOR_UNITS: dict[str, str] = {"GE": "Pa", "SIEMENS": "10Pa"}
VERIFIED_VENDOR_UNITS = {"GE"}  # checked on a real export; others yield to the display window
# MRE elastograms are displayed over 0-8 kPa (GE 4000/8000 in Pa, Siemens 400/800 in 10 Pa).
DISPLAY_TOP_KPA = 8.0


def unit_from_window(ds: Dataset) -> str | None:
    """The unit in which the stored window's top (centre + width / 2) is about 8 kPa, if any."""
    try:
        centre = float(np.ravel([ds.get("WindowCenter")])[0])
        width = float(np.ravel([ds.get("WindowWidth")])[0])
    except Exception:
        return None
    top = centre + width / 2.0
    if not np.isfinite(top) or top <= 0:
        return None
    best = min(UNIT_TO_KPA, key=lambda u: abs(np.log(top * UNIT_TO_KPA[u] / DISPLAY_TOP_KPA)))
    ratio = top * UNIT_TO_KPA[best] / DISPLAY_TOP_KPA
    return best if 0.4 <= ratio <= 2.5 else None


@dataclass(frozen=True)
class UnitMapping:
    """kPa = (stored * slope + intercept) * to_kpa."""

    slope: float
    intercept: float
    to_kpa: float
    source: str
    explicit: bool  # True when the file or the user stated the unit, False for a vendor default

    def apply(self, stored):
        return (stored * self.slope + self.intercept) * self.to_kpa


def _float(value, default: float) -> float:
    try:
        return default if value in (None, "") else float(value)
    except Exception:
        return default


def _rwvm(ds: Dataset) -> UnitMapping | None:
    try:
        seq = ds.get("RealWorldValueMappingSequence")
        if not seq:
            return None
        for item in seq:
            codes = item.get("MeasurementUnitsCodeSequence") or []
            code = str(codes[0].get("CodeValue", "")).strip().lower() if codes else ""
            if code in UCUM_TO_KPA:
                return UnitMapping(
                    slope=_float(item.get("RealWorldValueSlope"), 1.0),
                    intercept=_float(item.get("RealWorldValueIntercept"), 0.0),
                    to_kpa=UCUM_TO_KPA[code],
                    source=f"Real World Value Mapping ({codes[0].get('CodeValue')})",
                    explicit=True,
                )
    except Exception:
        return None
    return None


def stiffness_unit_mapping(
    ds: Dataset,
    vendor: str,
    override: str | None = None,
    vendor_units: dict[str, str] | None = None,
) -> UnitMapping:
    vendor_units = DEFAULT_VENDOR_UNITS if vendor_units is None else vendor_units
    slope = _float(ds.get("RescaleSlope"), 1.0)
    intercept = _float(ds.get("RescaleIntercept"), 0.0)
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        raise UnitError(f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g} cannot scale stored values; the header is corrupt, re-export the series.")
    rescaled = "RescaleSlope" in ds or "RescaleIntercept" in ds
    if override is not None:
        if override not in UNIT_TO_KPA:
            raise UnitError(f"unknown stiffness unit '{override}'; use one of {', '.join(UNIT_TO_KPA)}.")
        return UnitMapping(slope, intercept, UNIT_TO_KPA[override], f"--stiffness-unit {override}", True)
    mapped = _rwvm(ds)
    if mapped is not None:
        return mapped
    rescale_type = str(ds.get("RescaleType", "") or "").strip().lower()
    if rescaled and rescale_type in UCUM_TO_KPA:
        return UnitMapping(slope, intercept, UCUM_TO_KPA[rescale_type], f"Rescale Slope/Intercept, RescaleType {rescale_type}", True)
    via = "Rescale Slope/Intercept then " if rescaled else ""
    unit = vendor_units.get(vendor)
    if unit is not None and vendor in VERIFIED_VENDOR_UNITS:
        return UnitMapping(slope, intercept, UNIT_TO_KPA[unit], f"{via}{vendor} default unit {unit}", False)
    windowed = unit_from_window(ds)
    if windowed is not None:
        return UnitMapping(slope, intercept, UNIT_TO_KPA[windowed], f"{via}unit {windowed} from the 0-8 kPa display window", False)
    if unit is None:
        raise UnitError(
            f"cannot tell the stiffness unit (vendor '{vendor}', no Real World Value Mapping, RescaleType or 0-8 kPa window); "
            "rerun with --stiffness-unit Pa, 10Pa or kPa."
        )
    return UnitMapping(slope, intercept, UNIT_TO_KPA[unit], f"{via}{vendor} default unit {unit} (assumed)", False)
