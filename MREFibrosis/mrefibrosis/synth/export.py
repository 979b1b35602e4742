"""Write a simulated exam as vendor-style DICOM plus its ground truth (ROI, kPa, stage, status)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from ..measure.fibrosis_stages import load_presets
from ..reading.exam_loader import INVALID_STORED
from ..reading.geometry import build_geometry
from ..reading.hatch import draw_hatch
from ..results.colour_map import colour_elastogram
from ..results.roi_files import write_seg_nrrd
from .reader import reader_decision, reader_roi
from .simulate import SynthExam, SynthSettings, simulate_exam
from .vendor_dicom import StudyContext, axial_stack, write_ge_exam, write_siemens_exam

SIEMENS_WHITE = 800  # display maximum at window 400/800
GE_SETTINGS = SynthSettings(rows=256, cols=256, spacing_mm=1.5625, thickness_mm=10.0, step_mm=11.0)
SIEMENS_SETTINGS = SynthSettings(rows=204, cols=256, spacing_mm=1.5625, thickness_mm=8.0, step_mm=10.0)


def _text_mask(text: str, rows: int, cols: int, row0: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("L", (cols, rows), 0)
    ImageDraw.Draw(img).text((4, row0), text, fill=255)
    return np.asarray(img) > 0


def vendor_arrays(exam: SynthExam, vendor: str, rng: np.random.Generator) -> dict:
    """Stored pixel values as the vendor writes them, and the validity of each stored stiffness pixel."""
    kpa, conf, body = exam.stiffness_kpa, exam.confidence, exam.body
    out: dict = {}
    if vendor == "ge":
        pa = np.rint(kpa * 1000.0)
        invalid = ~np.isfinite(pa) | (pa > 30000)
        stored = np.where(body, np.clip(np.nan_to_num(pa), 1, 30000), 0)
        stored[invalid & body] = INVALID_STORED
        if rng.random() < 0.3:  # burnt-in label in the bottom rows, as on the real exam
            label = _text_mask("! LOW ACQ RES!", exam.settings.rows, exam.settings.cols, exam.settings.rows - 14)
            stored[:, label] = 9000
        out["stiffness_pa"] = stored.astype(np.int16)
        out["confidence_x1000"] = np.where(body, np.rint(conf * 1000), 0).astype(np.int16)
        out["stored_kpa"] = stored / 1000.0
        out["valid"] = (stored > 0) & (stored != INVALID_STORED)
    else:
        tenpa = np.where(body, np.clip(np.rint(np.nan_to_num(kpa) * 100.0), 1, 4095), 0).astype(np.uint16)
        low = body & (conf < exam.settings.confidence_threshold)
        hatch = {
            "period": int(rng.integers(6, 11)),
            "width": int(rng.integers(1, 3)),
            "cross": bool(rng.random() < 0.5),
            "value": SIEMENS_WHITE if rng.random() < 0.6 else 0,
            "phase": int(rng.integers(0, 6)),
        }
        masked = draw_hatch(tenpa, low, **hatch)
        out["elastogram_10pa"] = tenpa
        out["masked_10pa"] = masked
        out["hatch"] = hatch
        out["stored_kpa"] = tenpa / 100.0
        out["valid"] = (tenpa > 0) & (masked == tenpa)
        out["colour"] = colour_elastogram(np.where(low, 0, tenpa / 100.0)) if rng.random() < 0.5 else None
    return out


def _stage_table(kpa: float | None) -> dict:
    if kpa is None:
        return {name: None for name in load_presets()}
    return {name: p.stage_of(round(kpa, 2)).stage for name, p in load_presets().items()}


def write_exam(out_dir: str | os.PathLike, exam: SynthExam, vendor: str, key: str) -> dict:
    """exam folder: dicom/ (vendor series), roi.seg.nrrd and truth.json. Returns the truth record."""
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = np.random.default_rng(exam.seed + 7)
    arrays = vendor_arrays(exam, vendor, rng)  # first, so that the preview sheet draws the same hatch
    st = exam.settings
    n = exam.labels.shape[0]
    stack = axial_stack(n, st.rows, st.cols, st.spacing_mm, st.thickness_mm, st.step_mm - st.thickness_mm, z0=float(rng.uniform(-40, 40)))
    sex = "F" if rng.random() < 0.5 else "M"
    ctx = StudyContext(
        key=key,
        manufacturer="GE MEDICAL SYSTEMS" if vendor == "ge" else "SIEMENS",
        model="OPTIMA MR360" if vendor == "ge" else "MAGNETOM Aera",
        patient_id=f"SYN-{key}"[:64],
        patient_name=f"SYNTHETIC^{key}"[:64],
        sex=sex,
        age=f"{int(rng.integers(25, 80)):03d}Y",
    )
    mag = np.clip(exam.magnitude * 1000, 0, 32000)
    if vendor == "ge":
        write_ge_exam(
            tmp / "dicom",
            ctx,
            stack,
            arrays["stiffness_pa"],
            arrays["confidence_x1000"],
            magnitude=mag.astype(np.int16),
            phase_mrad=np.rint(np.clip(exam.phase_rad, -32, 32) * 1000).astype(np.int16),
            wave=np.rint(exam.wave * 1000).astype(np.int16),
            frequency_hz=int(st.frequency_hz),
            offsets=st.offsets,
        )
    else:
        wrapped = np.angle(np.exp(1j * exam.phase_rad))  # Siemens stores wrapped 12-bit phase
        phase12 = np.rint((wrapped + np.pi) / (2 * np.pi) * 4095).astype(np.uint16)
        write_siemens_exam(
            tmp / "dicom", ctx, stack, arrays["elastogram_10pa"], arrays["masked_10pa"], magnitude=mag.astype(np.uint16), phase=phase12, color=arrays["colour"]
        )
    roi = reader_roi(exam, valid=arrays["valid"])
    area = float(roi.sum() * st.spacing_mm**2 / 100.0)
    indeterminate, reason = reader_decision(exam, roi)
    ok = not indeterminate
    reader_kpa = float(arrays["stored_kpa"][roi].mean()) if ok else None
    geom, order = build_geometry(list(stack.positions), np.array(stack.orientation), stack.pixel_spacing, st.rows, st.cols, st.thickness_mm, "synthetic")
    write_seg_nrrd(tmp / "roi.seg.nrrd", roi[order], geom)
    write_seg_nrrd(tmp / "liver.seg.nrrd", exam.liver[order], geom, color=(0.85, 0.5, 0.4), segment=("liver", "Liver"))
    truth = {
        "exam": key,
        "seed": exam.seed,
        "vendor": vendor,
        "slices": n,
        "status": "ok" if ok else "indeterminate",
        "indeterminate_reason": reason,
        "reader_kpa": reader_kpa,
        "reader_median_kpa": float(np.median(arrays["stored_kpa"][roi])) if ok else None,
        "roi_area_cm2": area,
        "liver_kpa_true": exam.liver_kpa_true,
        "stage_drawn": exam.stage_drawn,
        "stages": _stage_table(reader_kpa),
        "failure": exam.failure,
        # slices the reader left out (breath-hold mismatch), by SliceLocation as the files give it
        "rejected_slice_locations_mm": sorted(
            round(float(stack.positions[k] @ np.cross(stack.orientation[:3], stack.orientation[3:])), 3) for k in exam.rejected_slices
        ),
        "snr": exam.snr,
        "loss_ratio": exam.loss_ratio,
        "wave_amplitude_rad": exam.amplitude_rad,
        "hatch": arrays.get("hatch"),
        "frequency_hz": st.frequency_hz,
        "generator": f"MREFibrosis {__version__}",
    }
    (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return truth


def make_exam(index: int, seed: int, vendor: str, stage_mix: dict | None, out_root: Path, failure: str | None = "random") -> dict:
    """One exam of a cohort: its seed is derived from the cohort seed and its index."""
    exam_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    v = vendor if vendor != "both" else ("ge" if index % 2 == 0 else "siemens")
    settings = GE_SETTINGS if v == "ge" else SIEMENS_SETTINGS
    exam = simulate_exam(exam_seed, settings, stage_mix=stage_mix, failure=failure)
    key = f"{seed}-{index:05d}"
    return write_exam(out_root / f"exam_{index:05d}", exam, v, key)
