"""Turn the series of one study into an Exam: pick the elastogram, its confidence, its magnitude."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ExamNotFoundError, MREFibrosisError, SeriesError, UnitError
from . import classify as roles
from .budget import BudgetLimits, exam_budget
from .dicom_files import PixelLimits
from .exam import Exam, SeriesUse, exam_key_for
from .findings import (
    FLAG_CONFIDENCE_NOT_ALIGNED,
    FLAG_DUPLICATE_IMAGES,
    FLAG_FREQUENCY_CONFLICT,
    FLAG_OPTIONAL_SERIES_SKIPPED,
    FLAG_RESCALE_VARIES,
    FLAG_SLICE_GAP,
    FLAG_UNIT_DOUBTFUL,
    FLAG_UNREADABLE_FILES,
    ReaderFinding,
)
from .hatch import estimate_period, fit_line_families, hatch_from_twin, hatch_without_twin, low_confidence_from_lines, low_confidence_region
from .offset_agreement import FIGURE_NAMES, offset_figures
from .optional_series import read_with_figures_on_grid
from .raw_series import split_raw
from .series import ScanResult, SeriesInfo, frequency_in_description, scan_folder
from .slice_consistency import MAX_SLICE_MEDIAN_RATIO, align_twin, instance_order_findings, is_twin, slice_value_findings, support_swap_findings
from .slice_witnesses import Witness, missing_slice_findings
from .stacks import Stack, align_to, load_stack
from .units import DEFAULT_VENDOR_UNITS, UNIT_TO_KPA, stiffness_unit_mapping, unit_from_window
from .waves import load_wave_amplitude

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
    # median stiffness of the confident (else all measurable) pixels a real exam can have, in kPa: a
    # unit 10x off lands outside (real GE: 2.08 kPa median, 1.36 kPa 5th percentile; assumed bounds)
    plausible_median_kpa: tuple[float, float] = (1.0, 12.0)
    vendor_units: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VENDOR_UNITS))
    limits: PixelLimits = PixelLimits()
    budget: BudgetLimits = BudgetLimits()
    include_identifiers: bool = False
    read_waves: bool = True  # wave or phase images locate the driver for the QC (about 30 more small files on a GE exam)
    signatures: tuple = roles.ASSUMED_SIGNATURES  # vendor ImageType signatures (assumed; a site may pass its own)
    # a slice whose body median differs from the other slices' by more than this factor makes the
    # exam indeterminate (a unit step or changed values; simulated exams stay within 1.2; assumed)
    max_slice_median_ratio: float = MAX_SLICE_MEDIAN_RATIO
    # the driver frequency when the files do not state it or disagree; without one no stage is given
    driver_frequency_hz: float | None = None

    def __post_init__(self):
        # JSON configs (PACS worker, receiver) give plain dicts and lists: turn them into the types used
        if isinstance(self.budget, dict):
            object.__setattr__(self, "budget", BudgetLimits(**self.budget))
        if isinstance(self.limits, dict):
            object.__setattr__(self, "limits", PixelLimits(**self.limits))
        if isinstance(self.plausible_median_kpa, list):
            object.__setattr__(self, "plausible_median_kpa", tuple(self.plausible_median_kpa))
        if self.signatures and isinstance(next(iter(self.signatures)), dict):
            sigs = tuple(roles.Signature(s["source"], frozenset(s["tokens"]), s["role"]) for s in self.signatures)
            object.__setattr__(self, "signatures", sigs)


def classify_all(series: list[SeriesInfo], options: ReadOptions) -> None:
    for s in series:
        s.role, s.reason = roles.classify(s, options.signatures)
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
    raw = [s for s in scan.series if s.role in roles.RAW_ROLES]
    if raw and not any(s.role in roles.MEASURABLE for s in scan.series):
        kinds = ", ".join(sorted({s.role.replace("_", " ") for s in raw}))
        return ExamNotFoundError(
            f"{scan.root.name or scan.root} holds raw MRE images ({kinds}; {len(raw)} series) but no elastogram: the stiffness map is "
            "computed on the scanner or by inversion software; export its stiffness (elastogram) series with the exam and measure that."
        )
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


def _same_acquisition(a: Stack, b: Stack) -> bool:
    """Two elastograms of one acquisition: the same grid and most slice positions shared (one of them
    may have lost a slice: the other is then its witness, not a second acquisition)."""
    if (a.geometry.rows, a.geometry.columns) != (b.geometry.rows, b.geometry.columns):
        return False
    la, lb = set(np.round(a.geometry.slice_locations_mm, 0)), set(np.round(b.geometry.slice_locations_mm, 0))
    shared = len(la & lb)
    return shared > 0 and shared >= 0.5 * min(len(la), len(lb)) and len(la ^ lb) <= 2


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
    stacks = [load_stack(s, options.limits.for_maps()) for s in candidates]
    primary = stacks[0]
    groups: list[list[Stack]] = []
    for st in stacks:
        home = next((g for g in groups if _same_acquisition(g[0], st)), None)
        if home is None:
            groups.append([st])
        else:
            home.append(st)
    if not options.stiffness_series and len(groups) > 1:
        names = "; ".join(", ".join(st.info.label for st in g) for g in groups)
        raise ExamNotFoundError(f"the study holds elastograms of {len(groups)} different acquisitions ({names}); choose one with --stiffness-series.")
    group = groups[0]
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
    if not options.stiffness_series:
        _refuse_repeat_acquisitions(plain, masked)
    elif plain and masked and not _twins(plain[0], masked[0]):
        # the named series and another acquisition: the other is no hatch mask of it, nor the reverse
        if primary.info.reason.startswith("hatch lines found"):
            primary.info.role, primary.info.reason = roles.STIFFNESS, "named with --stiffness-series"
        return (None, primary) if primary.info.role == roles.MASKED_STIFFNESS else (primary, None)
    unmasked = plain[0] if plain else None
    if options.stiffness_series and primary.info.role == roles.MASKED_STIFFNESS:
        return unmasked, primary
    return unmasked, masked[0] if masked else None


TWIN_MIN_EQUAL_SHARE = 0.2  # a masked twin repeats the plain values outside its hatch (Siemens-style: 0.75-1.0)
TWIN_MAX_RATIO_OFF = 0.03


def _twins(plain: Stack, masked: Stack) -> bool:
    """Whether `masked` is the plain map with a hatch drawn on it: the same stored values wherever
    both hold one (Siemens-style twins: 75-100 % equal), slice by slice, even when a slice of it is
    shifted by a pixel or two or lies at another position (`slice_consistency` says so later); not a
    map of other values (a repeat)."""
    match = align_to(plain.geometry, masked)
    kept = [k for k, m in enumerate(match) if m is not None]
    if not kept:
        return True  # not comparable here; the grids were grouped as one acquisition
    a = plain.stored[kept].astype(np.float64)
    b = masked.stored[[match[k] for k in kept]].astype(np.float64)
    both = (a > 0) & (b > 0)
    if both.sum() < 100:
        return True
    if a.shape == b.shape:
        equal = float(np.mean(np.abs(a[both] - b[both]) <= 1e-6 * np.maximum(1.0, np.abs(a[both]))))
        ratio = float(np.median(b[both] / a[both]))
        if equal >= TWIN_MIN_EQUAL_SHARE or abs(ratio - 1.0) <= TWIN_MAX_RATIO_OFF:
            return True
    return is_twin(a, b)


def _refuse_repeat_acquisitions(plain: list[Stack], masked: list[Stack]) -> None:
    """Two elastograms of one role at the same slice positions, or a 'masked twin' whose values are
    not the plain map's, are a repeat acquisition: measuring either by series order is a guess (a
    repeat with values x1.3 was measured silently, or taken as the hatched twin and turned into
    hatch everywhere). Refused, naming the series and the option that picks one."""
    same_role = plain if len(plain) > 1 else masked if len(masked) > 1 else None
    if same_role is None and plain and masked and not _twins(plain[0], masked[0]):
        same_role = [plain[0], masked[0]]
    if same_role:
        names = " and ".join(st.info.label for st in same_role)
        raise ExamNotFoundError(
            f"the study holds {len(same_role)} elastograms at the same slice positions whose values differ ({names}): "
            "a repeat acquisition; choose one with --stiffness-series."
        )


@dataclass
class _Converted:
    kpa: np.ndarray
    valid: np.ndarray
    unit_source: str
    explicit: bool
    to_kpa: float
    findings: list


def _stiffness_kpa(stack: Stack, vendor: str, options: ReadOptions) -> _Converted:
    stored = stack.stored
    kpa = np.empty(stored.shape, dtype=np.float32)
    mappings = [stiffness_unit_mapping(h, vendor, options.stiffness_unit, options.vendor_units) for h in stack.headers]
    for k, mapping in enumerate(mappings):
        kpa[k] = mapping.apply(stored[k].astype(np.float64))
    findings = []
    scales = sorted({(round(m.slope * m.to_kpa, 12), round(m.intercept * m.to_kpa, 12)) for m in mappings})
    if len(scales) > 1:
        slopes = ", ".join(f"{sl:g}" for sl in sorted({m.slope for m in mappings}))
        findings.append(
            ReaderFinding(
                FLAG_RESCALE_VARIES,
                f"{stack.info.label}: the stored-value scaling differs between slices (RescaleSlope {slopes}); check the export before trusting the number",
            )
        )
    invalid = (stored == 0) | ~np.isfinite(kpa)
    if stored.dtype.kind in "iu":
        invalid |= stored >= INVALID_STORED
    invalid |= (kpa < 0) | (kpa > options.max_plausible_kpa)
    kpa[~np.isfinite(kpa)] = 0.0
    sources = "; ".join(sorted({m.source for m in mappings}))
    return _Converted(kpa, ~invalid, sources, all(m.explicit for m in mappings), mappings[0].to_kpa, findings)


def _check_plausible(kpa: np.ndarray, mask: np.ndarray, label: str, bounds: tuple[float, float], source: str, user_unit: bool) -> ReaderFinding | None:
    """Refuse a unit that puts the median where no liver exam lies, whoever stated it (the
    file's Real World Value Mapping included); a unit the user gave is kept, with a warning."""
    if mask.sum() < 20:
        return None
    median = float(np.median(kpa[mask]))
    lo, hi = bounds
    if lo <= median <= hi:
        return None
    message = f"{label}: with {source} the median stiffness is {median:.3g} kPa, implausible for a liver exam (outside {lo:g}-{hi:g} kPa)"
    if user_unit:
        return ReaderFinding(FLAG_UNIT_DOUBTFUL, message + "; kept because --stiffness-unit was given")
    raise UnitError(f"{message}: the stored unit is wrong or the series is not an elastogram; rerun with --stiffness-unit Pa, 10Pa or kPa, or pick the series.")


def _window_disagreement(stack: Stack, to_kpa: float, source: str) -> ReaderFinding | None:
    """The 0-8 kPa display window implies a unit; say so when the chosen unit differs from it."""
    windowed = unit_from_window(stack.headers[0])
    if windowed is None or abs(np.log(UNIT_TO_KPA[windowed] / to_kpa)) < 0.01:
        return None
    return ReaderFinding(
        FLAG_UNIT_DOUBTFUL,
        f"{stack.info.label}: the unit from {source} differs from the one its 0-8 kPa display window implies ({windowed}); check the unit",
    )


CONFIDENCE_SCALES = ((1.0, 1.0), (100.0, 100.0), (1000.0, 1000.0))  # (largest value, divisor): 0-1, percent, x1000


def _confidence_scale(raw: np.ndarray, label: str) -> float:
    """The confidence map's scale from its values; refuse values no confidence map holds (a
    stiffness map described as confidence, e.g. swapped descriptions)."""
    values = raw[np.isfinite(raw) & (raw != 0)]
    if values.size == 0:
        return 1000.0
    top = float(np.percentile(values, 99.5))
    for limit, divisor in CONFIDENCE_SCALES:
        if top <= limit * 1.005:
            outside = float(np.mean((values < 0) | (values > limit * 1.005)))
            if outside <= 0.005:
                return divisor
            break
    raise SeriesError(
        f"{label}: holds values up to {top:.4g}, which no confidence map has (0-1, 0-100 or 0-1000): its description may be wrong; "
        "name the series with --stiffness-series and --confidence-series."
    )


def _slice_findings(stack: Stack) -> list[ReaderFinding]:
    """Lost or shadowed slices seen in the elastogram itself: a gap in the slice positions, duplicates
    dropped. (ImagesInAcquisition is not a slice count: `slice_witnesses`.)"""
    out = []
    geom = stack.geometry
    label = stack.info.label
    if geom.n_slices >= 3:
        steps = np.diff(geom.slice_locations_mm)
        typical = float(np.min(steps))  # one lost slice of four leaves steps 11, 22: the smallest is the spacing
        gaps = np.nonzero(steps > 1.5 * typical)[0]
        if typical > 0 and gaps.size:
            where = ", ".join(f"{geom.slice_locations_mm[g]:.1f}-{geom.slice_locations_mm[g + 1]:.1f} mm" for g in gaps)
            out.append(ReaderFinding(FLAG_SLICE_GAP, f"{label}: slice positions jump ({where}, usually {typical:.1f} mm): a slice is missing or unreadable"))
    if stack.info.unreadable:
        out.append(
            ReaderFinding(
                FLAG_UNREADABLE_FILES, f"{label}: {stack.info.unreadable} damaged DICOM file(s) beside its images could not be read: a slice may be missing"
            )
        )
    if stack.info.duplicates:
        out.append(ReaderFinding(FLAG_DUPLICATE_IMAGES, f"{label}: {stack.info.duplicates} image(s) repeat another one's SOP instance and were left out"))
    return out


def _driver_frequency(series, options: ReadOptions, findings: list) -> float | None:
    """The exam's driver frequency: the one the user named, else the one its series state (GE's
    private tag, else a description such as "MRE_60Hz"). Series that disagree (raw 60 Hz, stiffness
    40 Hz) are not resolved by their order: the frequency is unknown and a finding names the values,
    so no stage is taken against a preset on a guess."""
    found: dict[float, list[str]] = {}
    for s in series:
        hz = s.driver_frequency_hz or frequency_in_description(s.description)
        if hz:
            found.setdefault(round(hz * 2) / 2, []).append(s.label)
    said = "; ".join(f"{hz:g} Hz in {', '.join(labels)}" for hz, labels in sorted(found.items()))
    named = options.driver_frequency_hz
    if named is not None:
        if any(abs(hz - named) > 0.5 for hz in found):
            findings.append(ReaderFinding(FLAG_FREQUENCY_CONFLICT, f"the series state {said}; {named:g} Hz from --driver-frequency is used"))
        return float(named)
    if len(found) > 1:
        findings.append(ReaderFinding(FLAG_FREQUENCY_CONFLICT, f"the series disagree on the driver frequency ({said}); the frequency is taken as unknown"))
        return None
    return next(iter(found), None)


def build_exam(study_uid: str, series: list[SeriesInfo], options: ReadOptions) -> Exam:
    """One exam from its study's series, within the per-exam budget of bytes, pixels and time."""
    with exam_budget(options.budget):
        return _build_exam(study_uid, series, options)


def _load_confidence(series: list[SeriesInfo], geom, kpa_shape, options: ReadOptions, notes: list, findings: list, used: list, witnesses: list):
    """(confidence 0-1, its source, its stack) from the first confidence series on the elastogram's grid."""
    for cs in [s for s in series if s.role == roles.CONFIDENCE]:
        try:
            cstack = load_stack(cs, options.limits.for_maps())
        except MREFibrosisError as exc:
            findings.append(ReaderFinding(FLAG_OPTIONAL_SERIES_SKIPPED, f"confidence series not used: {exc}"))
            continue
        match = align_to(geom, cstack)
        if all(m is None for m in match):
            findings.append(
                ReaderFinding(FLAG_CONFIDENCE_NOT_ALIGNED, f"{cs.label}: its grid (size, spacing or positions) differs from the elastogram's; not used")
            )
            continue
        witnesses.append(Witness(cs.label, cstack.geometry.positions))
        raw = cstack.stored.astype(np.float32)
        scale = _confidence_scale(raw, cs.label)
        confidence = np.zeros(kpa_shape, dtype=np.float32)
        for k, m in enumerate(match):
            if m is None:
                notes.append(f"no confidence image for slice {k}: treated as low confidence")
            else:
                confidence[k] = np.nan_to_num(raw[m] / scale)
        used.append(SeriesUse(cs.role, cs.series_number, cs.description, len(cstack.headers)))
        return confidence, f"{cs.label} (x{scale:g}) >= {options.confidence_threshold:g}", cstack
    return None, "none", None


def _build_exam(study_uid: str, series: list[SeriesInfo], options: ReadOptions) -> Exam:
    unmasked, masked = _pick_elastograms(series, options)
    main = unmasked or masked
    assert main is not None
    vendor = main.info.vendor
    geom = main.geometry
    notes = list(geom.notes)
    findings: list[ReaderFinding] = list(_slice_findings(main))
    used = []
    converted = _stiffness_kpa(main, vendor, options)
    kpa, valid = converted.kpa, converted.valid
    findings += converted.findings
    used.append(SeriesUse(main.info.role, main.info.series_number, main.info.description, len(main.headers)))

    witnesses: list[Witness] = []
    confidence, confidence_source, cstack = _load_confidence(series, geom, kpa.shape, options, notes, findings, used, witnesses)
    confidence_valid = confidence >= options.confidence_threshold if confidence is not None else None
    order_witnesses = [(st.info.label, st.headers) for st in (cstack, masked if masked is not main else None) if st is not None]
    findings += instance_order_findings(main.info.label, main.headers, order_witnesses)
    if cstack is not None and len(cstack.headers) == geom.n_slices:
        findings += support_swap_findings(geom, main.info.label, main.stored != 0, cstack.info.label, confidence > 0)

    if masked is not None and masked is not main:
        match = align_to(geom, masked)
        if any(m is None for m in match):
            findings.append(
                ReaderFinding(
                    FLAG_CONFIDENCE_NOT_ALIGNED, f"{masked.info.label}: the masked elastogram's grid differs from the elastogram's; its hatch is not used"
                )
            )
            masked = None
    if masked is not None:
        if masked is not main:
            witnesses.append(Witness(masked.info.label, masked.geometry.positions))
            used.append(SeriesUse(masked.info.role, masked.info.series_number, masked.info.description, len(masked.headers)))
        match = align_to(geom, masked)
        twin = None
        if unmasked is not None and all(m is not None for m in match):
            twin = align_twin(geom, masked.info.label, unmasked.stored, masked.stored[[m for m in match]])
            findings += twin.findings
        if twin is not None and twin.usable:
            hatch = hatch_from_twin(twin.masked, unmasked.stored)
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

    # judged on all stored non-background values, so a wrong unit cannot hide behind the 50 kPa cap
    stored = main.stored
    candidates = (stored != 0) & np.isfinite(stored.astype(np.float64))
    if stored.dtype.kind in "iu":
        candidates &= stored < INVALID_STORED
    if confidence_valid is not None and (candidates & confidence_valid).sum() >= 20:
        candidates &= confidence_valid
    user_unit = options.stiffness_unit is not None
    doubt = _check_plausible(kpa, candidates, main.info.label, options.plausible_median_kpa, converted.unit_source, user_unit)
    if doubt is None and not user_unit:
        doubt = _window_disagreement(main, converted.to_kpa, converted.unit_source)
    if doubt is not None:
        findings.append(doubt)
    if not valid.any():
        notes.append("no valid stiffness pixels in the elastogram")
    findings += slice_value_findings(geom, main.info.label, kpa, valid, options.max_slice_median_ratio)

    magnitude, offsets = _magnitude(series, geom, options, used, notes, findings, witnesses)
    wave_amplitude = load_wave_amplitude(series, geom, options.limits, used, findings, witnesses) if options.read_waves else None
    if not any(f.flag == FLAG_SLICE_GAP for f in findings):
        findings += missing_slice_findings(geom, main.info.label, witnesses)
    frequency = _driver_frequency(series, options, findings)
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
        **offsets,
        wave_amplitude=wave_amplitude,
        driver_frequency_hz=frequency,
        unit_source=converted.unit_source,
        confidence_source=confidence_source,
        confidence_threshold=options.confidence_threshold,
        series_used=used,
        notes=notes,
        findings=findings,
        identifiers=identifiers,
        source_headers=list(main.headers),
    )


def _magnitude(series, geom, options, used, notes, findings, witnesses) -> tuple[np.ndarray | None, dict]:
    """The magnitude image on the elastogram's grid (mean over the phase offsets) and how its offsets
    differ per slice (the Exam's `offset_*` fields; empty without per-offset
    images); a damaged or oversized optional series is skipped with a warning, never fatal, and never
    decoded when its grid cannot match."""
    for s in series:
        if s.role not in (roles.MAGNITUDE, roles.RAW_MRE):
            continue
        if (s.rows, s.columns) != (geom.rows, geom.columns):
            notes.append(f"{s.label}: {s.rows} x {s.columns} images do not lie on the elastogram's {geom.rows} x {geom.columns} grid; not read")
            continue
        refs, decoded = s.instances, None
        if s.role == roles.RAW_MRE:  # GE MR-Touch: phase and magnitude images in one series
            split = split_raw(s, options.limits)
            refs, decoded = split.magnitude, split.decoded
            findings += split.findings
            if not refs:
                continue
        found = read_with_figures_on_grid(
            s,
            refs,
            geom,
            options.limits,
            "magnitude",
            used,
            findings,
            witnesses,
            average_same_position=True,
            figure_of_same_position=offset_figures,
            decoded=decoded,
        )
        if found is not None:
            magnitude, figures = found
            offsets = {}
            if figures is not None and figures.ndim == 2 and np.isfinite(figures).any():
                named = dict(zip(FIGURE_NAMES, figures.T))
                offsets = {
                    "offset_agreement": named["agreement"],
                    "offset_shift_mm": named["shift_px"] * geom.row_spacing_mm,
                    "offset_intensity_cv": named["intensity_cv"],
                }
            return magnitude, offsets
    return None, {}


def read_exam(path, options: ReadOptions = ReadOptions()) -> Exam:
    """Read the one MRE exam below path (a folder, recursively, or a single file)."""
    with exam_budget(options.budget.for_scan(), fresh=True, what="the folder scan"):
        scan = scan_folder(path)
        study_uid, series = choose_study(scan, options)
    with exam_budget(options.budget, fresh=True):
        return build_exam(study_uid, series, options)
