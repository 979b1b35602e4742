"""Turn the series of one study into an Exam: pick the elastogram, its confidence, its magnitude."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ExamNotFoundError, MREFibrosisError, SeriesError, UnitError
from . import classify as roles
from .dicom_files import PixelLimits
from .exam import Exam, SeriesUse, exam_key_for
from .hatch import estimate_period, fit_line_families, hatch_from_twin, hatch_without_twin, low_confidence_from_lines, low_confidence_region
from .series import ScanResult, SeriesInfo, scan_folder
from .stacks import Stack, align_to, load_stack
from .units import DEFAULT_VENDOR_UNITS, stiffness_unit_mapping

INVALID_STORED = 32766  # GE marks pixels without a valid inversion with this value
MIN_HATCH_FRACTION = 0.01  # of the non-zero area, to call an image confidence-masked


@dataclass(frozen=True)
class ReadOptions:
    """Everything a site may need to override when its exports differ from the defaults."""

    stiffness_unit: str | None = None  # Pa, 10Pa or kPa; overrides file and vendor defaults
    stiffness_series: str | None = None  # SeriesNumber or SeriesInstanceUID
    confidence_series: str | None = None
    study: str | None = None  # exam key or StudyInstanceUID when a folder holds several exams
    confidence_threshold: float = 0.95
    hatch_period_px: int | None = None
    max_plausible_kpa: float = 50.0
    vendor_units: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VENDOR_UNITS))
    limits: PixelLimits = PixelLimits()
    include_identifiers: bool = False


def classify_all(series: list[SeriesInfo], options: ReadOptions) -> None:
    for s in series:
        s.role, s.reason = roles.classify(s)
        if options.stiffness_series and s.matches(options.stiffness_series):
            if s.is_color:
                raise SeriesError(f"{s.label} is a colour image and cannot be measured; select the grayscale elastogram.")
            if s.role not in roles.MEASURABLE:
                s.role, s.reason = roles.STIFFNESS, "selected with --stiffness-series"
        elif options.confidence_series and s.matches(options.confidence_series):
            s.role, s.reason = roles.CONFIDENCE, "selected with --confidence-series"
        elif s.role == roles.DERIVED_UNKNOWN:
            s.role, s.reason = _role_from_window(s)


def _role_from_window(s: SeriesInfo) -> tuple[str, str]:
    """GE confidence maps are windowed 950/100; elastograms span kPa ranges with wide windows."""
    try:
        centre = float(np.ravel([s.first_header.get("WindowCenter", np.nan)])[0])
        width = float(np.ravel([s.first_header.get("WindowWidth", np.nan)])[0])
    except Exception:
        centre = width = float("nan")
    if np.isfinite(centre) and np.isfinite(width) and centre >= 800 and width <= 300:
        return roles.CONFIDENCE, f"derived series windowed {centre:g}/{width:g} like a confidence x1000 map"
    return roles.STIFFNESS, "derived grayscale series, assumed an elastogram (hatch decides masked or not)"


def mre_studies(scan: ScanResult, options: ReadOptions) -> dict[str, list[SeriesInfo]]:
    """Studies holding at least one measurable elastogram series."""
    classify_all(scan.series, options)
    out = {}
    for study, series in scan.studies.items():
        if any(s.role in roles.MEASURABLE for s in series):
            out[study] = series
    return out


def _no_exam_error(scan: ScanResult) -> ExamNotFoundError:
    colour = any(s.role == roles.COLOR for s in scan.series)
    hint = " (only colour elastograms were found; export the grayscale series)" if colour else ""
    return ExamNotFoundError(
        f"no MRE elastogram series found in {scan.root.name or scan.root}{hint}; "
        "run 'mrefibrosis inspect' on it to see how each series was classified, "
        "then name the series with --stiffness-series if needed."
    )


def find_exams(paths, options: ReadOptions) -> list[tuple[str, list[SeriesInfo]]]:
    """Every MRE exam below the given folders, in path order (for runs over many exams)."""
    found: list[tuple[str, list[SeriesInfo]]] = []
    for path in paths:
        scan = scan_folder(path)
        studies = mre_studies(scan, options)
        if options.study:
            studies = {k: v for k, v in studies.items() if options.study in (k, exam_key_for(k))}
        if not studies and len(paths) == 1:
            raise _no_exam_error(scan)
        found.extend(sorted(studies.items(), key=lambda kv: exam_key_for(kv[0])))
    if not found:
        raise ExamNotFoundError("no MRE exam found in the given folders; run 'mrefibrosis inspect' on one of them.")
    return found


def choose_study(scan: ScanResult, options: ReadOptions) -> tuple[str, list[SeriesInfo]]:
    studies = mre_studies(scan, options)
    if options.study:
        studies = {k: v for k, v in studies.items() if options.study in (k, exam_key_for(k))}
    if not studies:
        raise _no_exam_error(scan)
    if len(studies) > 1:
        keys = ", ".join(exam_key_for(k) for k in studies)
        raise ExamNotFoundError(f"the folder holds {len(studies)} MRE exams ({keys}); point at one exam's folder or pick one with --study KEY.")
    return next(iter(studies.items()))


def _geometry_key(stack: Stack) -> tuple:
    g = stack.geometry
    return (g.rows, g.columns, tuple(np.round(g.slice_locations_mm, 0)))


def _display_max(stack: Stack) -> float:
    h = stack.headers[0]
    try:
        c = float(np.ravel([h.get("WindowCenter")])[0])
        w = float(np.ravel([h.get("WindowWidth")])[0])
        return c + w / 2.0
    except Exception:
        return float(np.nanmax(stack.stored))


def _hatch_fraction(stack: Stack) -> float:
    hatch = hatch_without_twin(stack.stored, _display_max(stack))
    nonzero = max(1, int(np.count_nonzero(stack.stored)))
    return float(hatch.sum()) / nonzero


def _pick_elastograms(series: list[SeriesInfo], options: ReadOptions) -> tuple[Stack | None, Stack | None]:
    """Return (unmasked, masked) elastogram stacks of the one acquisition to measure."""
    if options.stiffness_series:
        chosen = [s for s in series if s.matches(options.stiffness_series)]
        if not chosen:
            raise ExamNotFoundError(f"no series matches --stiffness-series {options.stiffness_series}; run 'mrefibrosis inspect' to list them.")
        candidates = chosen + [s for s in series if s.role in roles.MEASURABLE and s not in chosen]
    else:
        candidates = [s for s in series if s.role in roles.MEASURABLE]
    stacks = [load_stack(s, options.limits) for s in candidates]
    primary = stacks[0]
    groups: dict[tuple, list[Stack]] = {}
    for st in stacks:
        groups.setdefault(_geometry_key(st), []).append(st)
    if not options.stiffness_series and len(groups) > 1:
        names = "; ".join(", ".join(st.info.label for st in g) for g in groups.values())
        raise ExamNotFoundError(f"the study holds elastograms of {len(groups)} different acquisitions ({names}); choose one with --stiffness-series.")
    group = groups[_geometry_key(primary)]
    masked = [st for st in group if st.info.role == roles.MASKED_STIFFNESS]
    plain = [st for st in group if st.info.role == roles.STIFFNESS]
    if not masked and len(plain) >= 1:
        # Names did not say which one is masked: the hatch does.
        for st in list(plain):
            if _hatch_fraction(st) >= MIN_HATCH_FRACTION and (len(plain) > 1 or st.info.vendor != "GE"):
                st.info.role, st.info.reason = roles.MASKED_STIFFNESS, "hatch lines found in the pixels: confidence-masked elastogram"
                plain.remove(st)
                masked.append(st)
                break
    unmasked = plain[0] if plain else None
    if options.stiffness_series and primary.info.role == roles.MASKED_STIFFNESS:
        return unmasked, primary
    return unmasked, masked[0] if masked else None


def _stiffness_kpa(stack: Stack, vendor: str, options: ReadOptions) -> tuple[np.ndarray, np.ndarray, str, bool]:
    stored = stack.stored
    kpa = np.empty(stored.shape, dtype=np.float32)
    explicit = True
    sources = set()
    for k, header in enumerate(stack.headers):
        mapping = stiffness_unit_mapping(header, vendor, options.stiffness_unit, options.vendor_units)
        kpa[k] = mapping.apply(stored[k].astype(np.float64))
        explicit &= mapping.explicit
        sources.add(mapping.source)
    invalid = (stored == 0) | ~np.isfinite(kpa)
    if stored.dtype.kind in "iu":
        invalid |= stored >= INVALID_STORED
    invalid |= (kpa < 0) | (kpa > options.max_plausible_kpa)
    kpa[~np.isfinite(kpa)] = 0.0
    return kpa, ~invalid, "; ".join(sorted(sources)), explicit


def _check_plausible(kpa: np.ndarray, mask: np.ndarray, label: str) -> None:
    if mask.sum() < 20:
        return
    median = float(np.median(kpa[mask]))
    if not 0.2 <= median <= 25.0:
        raise UnitError(
            f"{label}: with the default unit the median stiffness would be {median:.3g} kPa, which is implausible; rerun with --stiffness-unit Pa, 10Pa or kPa."
        )


def build_exam(study_uid: str, series: list[SeriesInfo], options: ReadOptions) -> Exam:
    unmasked, masked = _pick_elastograms(series, options)
    main = unmasked or masked
    assert main is not None
    vendor = main.info.vendor
    geom = main.geometry
    notes = list(geom.notes)
    used = []
    kpa, valid, unit_source, explicit = _stiffness_kpa(main, vendor, options)
    used.append(SeriesUse(main.info.role, main.info.series_number, main.info.description, len(main.headers)))

    confidence = None
    confidence_valid = None
    confidence_source = "none"
    conf_series = [s for s in series if s.role == roles.CONFIDENCE]
    for cs in conf_series:
        cstack = load_stack(cs, options.limits)
        match = align_to(geom, cstack)
        if all(m is None for m in match):
            continue
        raw = cstack.stored.astype(np.float32)
        top = float(np.nanmax(raw)) if raw.size else 0.0
        scale = 1000.0 if top > 100.5 else (100.0 if top > 1.5 else 1.0)  # x1000 (GE), percent, or 0-1
        confidence = np.zeros(kpa.shape, dtype=np.float32)
        for k, m in enumerate(match):
            if m is None:
                notes.append(f"no confidence image for slice {k}: treated as low confidence")
            else:
                confidence[k] = np.nan_to_num(raw[m] / scale)
        confidence_valid = confidence >= options.confidence_threshold
        confidence_source = f"{cs.label} (x{scale:g}) >= {options.confidence_threshold:g}"
        used.append(SeriesUse(cs.role, cs.series_number, cs.description, len(cstack.headers)))
        break

    if masked is not None:
        if masked is not main:
            used.append(SeriesUse(masked.info.role, masked.info.series_number, masked.info.description, len(masked.headers)))
        match = align_to(geom, masked)
        if unmasked is not None and all(m is not None for m in match):
            hatch = hatch_from_twin(masked.stored[[m for m in match]], unmasked.stored)
            how = "hatch of the confidence-masked twin"
        else:
            hatch = hatch_without_twin(masked.stored, _display_max(masked))
            how = "hatch lines of the confidence-masked elastogram"
        body = valid | hatch
        valid &= ~hatch
        if confidence_valid is None:
            families = [] if options.hatch_period_px else fit_line_families(hatch)
            if families:
                confidence_valid = ~low_confidence_from_lines(hatch, body, families) & valid
                confidence_source = f"{how} ({' + '.join(f'{f.direction} lines every {f.period} px' for f in families)})"
            else:  # not a regular pattern (or the period was given): close and widen the hatch
                period = options.hatch_period_px or estimate_period(hatch)
                confidence_valid = ~low_confidence_region(hatch, period) & valid
                confidence_source = f"{how} (period {period} px)"
    if confidence_valid is not None:
        confidence_valid &= valid
    else:
        notes.append("no confidence map or confidence-masked elastogram: ROI confidence cannot be checked")

    if not explicit:
        # judged on all stored non-background values, so a wrong unit cannot hide behind the 50 kPa cap
        stored = main.stored
        candidates = (stored != 0) & np.isfinite(stored.astype(np.float64))
        if stored.dtype.kind in "iu":
            candidates &= stored < INVALID_STORED
        if confidence_valid is not None and (candidates & confidence_valid).sum() >= 20:
            candidates &= confidence_valid
        _check_plausible(kpa, candidates, main.info.label)  # kpa keeps out-of-range values; only NaN became 0
    if not valid.any():
        notes.append("no valid stiffness pixels in the elastogram")

    magnitude = _magnitude(series, geom, options, used, notes)
    frequency = next((s.driver_frequency_hz for s in series if s.driver_frequency_hz), None)
    identifiers = {}
    if options.include_identifiers:
        h = main.headers[0]
        for name in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyDate", "StudyInstanceUID"):
            identifiers[name] = str(h.get(name, "") or "")
    return Exam(
        exam_key=exam_key_for(study_uid),
        vendor=vendor,
        geometry=geom,
        stiffness_kpa=kpa,
        valid=valid,
        confidence_valid=confidence_valid,
        confidence=confidence,
        magnitude=magnitude,
        driver_frequency_hz=frequency,
        unit_source=unit_source,
        confidence_source=confidence_source,
        confidence_threshold=options.confidence_threshold,
        series_used=used,
        notes=notes,
        identifiers=identifiers,
        source_headers=list(main.headers),
    )


def _magnitude(series, geom, options, used, notes) -> np.ndarray | None:
    for s in series:
        if s.role == roles.MAGNITUDE:
            refs = s.instances
        elif s.role == roles.RAW_MRE:
            ordered = sorted(s.instances, key=lambda r: (r.instance_number is None, r.instance_number or 0))
            refs = ordered[len(ordered) // 2 :]  # GE: phase first, magnitude second
        else:
            continue
        try:
            st = load_stack(s, options.limits, instances=refs, average_same_position=True)
        except MREFibrosisError as exc:
            notes.append(f"magnitude not used: {exc}")
            continue
        match = align_to(geom, st)
        if any(m is None for m in match):
            continue
        used.append(SeriesUse(s.role, s.series_number, s.description, len(refs)))
        return np.stack([st.stored[m] for m in match]).astype(np.float32)
    return None


def read_exam(path, options: ReadOptions = ReadOptions()) -> Exam:
    """Read the one MRE exam below path (a folder, recursively, or a single file)."""
    scan = scan_folder(path)
    study_uid, series = choose_study(scan, options)
    return build_exam(study_uid, series, options)
