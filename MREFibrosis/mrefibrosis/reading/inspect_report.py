"""The text `mrefibrosis inspect` prints: what was found, how it was classified, and why."""

from __future__ import annotations

from pathlib import Path

from ..errors import MREFibrosisError
from . import classify as roles
from .exam import exam_key_for
from .exam_loader import ReadOptions, build_exam, classify_all
from .series import clean_text, scan_folder


def inspect_report(path: Path, options: ReadOptions) -> str:
    scan = scan_folder(path)
    classify_all(scan.series, options)
    lines = [f"{scan.files_seen} files read below {clean_text(path, 120)}"]
    for reason, count in sorted(scan.skipped.items()):
        lines.append(f"  skipped {count} file(s): {reason}")
    if not scan.series:
        lines.append("no DICOM image series found")
    for study, series in scan.studies.items():
        lines.append(f"\nexam {exam_key_for(study)}  ({len(series)} series)")
        for s in series:
            size = f"{s.rows}x{s.columns}" if s.rows else "?"
            dup = f", {s.duplicates} duplicate instance(s) ignored" if s.duplicates else ""
            lines.append(
                f"  series {s.series_number if s.series_number is not None else '?':>5}  {clean_text(s.description, 32):32}  "
                f"{len(s.instances):3d} img {size:>9}  {s.vendor:8} -> {s.role}{dup}"
            )
            lines.append(f"        why: {s.reason}")
        if not any(s.role in roles.MEASURABLE for s in series):
            lines.append("  not an MRE exam: no elastogram series (use --stiffness-series to name one)")
            continue
        try:
            exam = build_exam(study, series, options)
        except MREFibrosisError as exc:
            lines.append(f"  NOT usable: {exc}")
            continue
        g = exam.geometry
        lines.append(
            f"  usable: {exam.vendor}, {g.n_slices} slices of {g.rows}x{g.columns} at "
            f"{g.row_spacing_mm:.4g}x{g.column_spacing_mm:.4g} mm, step {g.slice_step_mm:.3g} mm"
        )
        lines.append(f"  stiffness unit: {exam.unit_source}")
        lines.append(f"  confidence: {exam.confidence_source}")
        freq = f"{exam.driver_frequency_hz:g} Hz" if exam.driver_frequency_hz else "unknown"
        lines.append(
            f"  driver frequency: {freq}; magnitude: {'yes' if exam.magnitude is not None else 'no'}; "
            f"wave images (driver position): {'yes' if exam.wave_amplitude is not None else 'no'}"
        )
        valid_cm2 = exam.confidence_valid.sum() * g.pixel_area_mm2 / 100 if exam.confidence_valid is not None else float("nan")
        lines.append(f"  confidence-valid area: {valid_cm2:.1f} cm2")
        for note in exam.notes:
            lines.append(f"  note: {note}")
    return "\n".join(lines)
