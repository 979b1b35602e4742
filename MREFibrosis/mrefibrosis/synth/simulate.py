"""One synthetic MRE exam: anatomy -> tissue mechanics -> waves (driver plus mode conversion) ->
GRE encoding (magnitude with coil shading and breathing ghosts, noisy phase offsets) -> scanner
inversion, with its failure mode (if any) and the liver mask as ground truth."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import anatomy as A
from .inversion import first_harmonic, invert
from .magnitude import coil_shading
from .offset_signal import OffsetSignal, offset_image, slice_draws
from .reader import reader_roi
from .synth_exam import SynthExam, SynthSettings
from .tissue import draw_mechanics, gre_intensity, shear_modulus
from .waves import conversion_source, solve_helmholtz

STAGE_MEAN_KPA = {"F0": 1.9, "F1": 2.3, "F2": 3.1, "F3": 3.8, "F4": 5.0}
STAGE_SD_KPA = 0.45
# Share of a cohort per technical failure mode (assumed; real rates depend on the population).
FAILURES = {"iron_overload": 0.04, "ascites": 0.03, "breath_hold": 0.04, "driver_off": 0.02, "very_stiff": 0.03}
VERY_STIFF_KPA = (7.0, 9.5)
# Breath-hold mismatch: the offsets acquired after the patient's breath changed see the anatomy
# displaced mostly through the slice (the liver moves cranio-caudally with the diaphragm) and partly
# anterior-posteriorly, by more than a quarter of a liver wavelength (6 mm at 2 kPa and 60 Hz), so
# that the wave images of the slice no longer add up; a reader leaves such a slice out (assumed
# ranges, millimetres).
BREATH_HOLD_THROUGH_PLANE_MM = (10.0, 20.0)
BREATH_HOLD_AP_MM = (6.5, 12.0)
# Residual drift a reader accepts: on the real GE exam (domain doc section 5) some offsets of the 3
# most superior slices were shifted 2.8-4.9 mm and the reader measured them. A share of simulated
# exams drifts like that on their upper slices (kept by the reader).
DRIFT_SHARE = 0.35
DRIFT_THROUGH_PLANE_MM = (0.0, 4.0)
DRIFT_AP_MM = (1.0, 5.0)
LEVEL_SPAN_MM = 110.0  # the anatomy's levels z = 0..1 span this many millimetres

# Strength of the shear waves converted at interfaces, relative to the driver band (per pixel).
CONVERSION_STRENGTH = (0.15, 0.35)
WAVE_AMPLITUDE_RAD = (1.0, 2.2)
REPORT_MARGIN_PX = 3  # the scanner leaves out this rim of the processed region (assumed)  # first-harmonic amplitude 10-40 mm from the driver


def draw_stage(rng: np.random.Generator, mix: dict[str, float] | None) -> tuple[str, float]:
    mix = mix or {k: 1.0 for k in STAGE_MEAN_KPA}
    names = list(mix)
    w = np.array([mix[n] for n in names], float)
    stage = names[int(rng.choice(len(names), p=w / w.sum()))]
    kpa = float(np.clip(rng.normal(STAGE_MEAN_KPA[stage], STAGE_SD_KPA), 1.4, 9.0))
    return stage, kpa


def _draw_failure(rng: np.random.Generator) -> str | None:
    u = rng.random()
    acc = 0.0
    for name, p in FAILURES.items():
        acc += p
        if u < acc:
            return name
    return None


def _solve_slice(labels, gmag_kpa, eta, source, spacing_mm, freq):
    body = labels != A.AIR
    rr, cc = np.nonzero(body)
    m = 10
    r0, r1 = max(rr.min() - m, 0), min(rr.max() + m + 1, labels.shape[0])
    c0, c1 = max(cc.min() - m, 0), min(cc.max() + m + 1, labels.shape[1])
    gprime = gmag_kpa * 1000.0 / np.sqrt(1 + eta**2)
    g = gprime * (1 + 1j * eta)
    u = np.zeros(labels.shape, complex)
    u[r0:r1, c0:c1] = solve_helmholtz(g[r0:r1, c0:c1], source[r0:r1, c0:c1], spacing_mm * 1e-3, freq)
    return u


def _wave_field(labels, driver, gmag, eta, st, rng, conversion, amp):
    """Complex displacement in radians of phase: driver band plus interface-converted waves."""
    source = driver.astype(complex)
    conv = conversion_source(gmag, driver, st.spacing_mm) * (labels != A.AIR)
    source = source + conversion * np.exp(1j * rng.uniform(0, 2 * np.pi)) * conv
    u = _solve_slice(labels, gmag, eta, source, st.spacing_mm, st.frequency_hz)
    # amplitude is set near the driver, so attenuation (stiff liver, ascites) shows deeper in
    near = ndimage.distance_transform_edt(~driver) * st.spacing_mm
    band = (labels != A.AIR) & (near > 10) & (near < 40)
    ref = np.median(np.abs(u[band])) if band.any() else np.abs(u).max()
    return u * (amp / max(ref, 1e-30))


def _draw_motion(rng, through_mm, ap_mm) -> tuple[float, float]:
    """(through-plane, anterior-posterior) displacement in mm, each of either sign."""
    return float(rng.uniform(*through_mm)) * float(rng.choice([-1.0, 1.0])), float(rng.uniform(*ap_mm)) * float(rng.choice([-1.0, 1.0]))


def _moved_position(patient, z, st, u, failure, through: float, ap: float):
    """(labels, displacement, tissue signal) of an offset acquired with the anatomy displaced through
    the slice and anterior-posterior (mm). The driver sits on the body wall and moves with it, so the
    wave pattern moves with the tissue: the same displacement field, shifted in-plane with the anatomy."""
    # moved by less than half its thickness, the slice still holds the same small vessels
    detail_z = z if abs(through) < st.thickness_mm / 2 else None
    labels = A.slice_labels(patient, z + through / LEVEL_SPAN_MM, st.rows, st.cols, st.spacing_mm, dy_mm=ap, detail_z=detail_z)
    rows = ap / st.spacing_mm
    moved_u = ndimage.shift(u.real, (rows, 0), order=1) + 1j * ndimage.shift(u.imag, (rows, 0), order=1)
    return labels, moved_u, gre_intensity(labels, failure == "iron_overload")


def _offset_positions(rng, k, bad_slices, drift_slices, n_offsets) -> list[tuple[float, float]]:
    """Where each offset of slice k was acquired, (through-plane, anterior-posterior) mm from the
    reference: a breath-hold mismatch moves the later offsets at once; drift creeps offset by offset
    (the diaphragm relaxing during the breath-hold)."""
    still = [(0.0, 0.0)] * n_offsets
    if k in bad_slices:
        through, ap = _draw_motion(rng, BREATH_HOLD_THROUGH_PLANE_MM, BREATH_HOLD_AP_MM)
        first = int(rng.integers(1, n_offsets))
        return [(0.0, 0.0) if o < first else (through, ap) for o in range(n_offsets)]
    if k < drift_slices:
        through, ap = _draw_motion(rng, DRIFT_THROUGH_PLANE_MM, DRIFT_AP_MM)
        return [(through * o / (n_offsets - 1), ap * o / (n_offsets - 1)) for o in range(n_offsets)]
    return still


def simulate_exam(
    seed: int,
    settings: SynthSettings = SynthSettings(),
    n_slices: int | None = None,
    stage_mix: dict[str, float] | None = None,
    liver_kpa: float | None = None,
    snr: float | None = None,
    failure: str | None = "random",
) -> SynthExam:
    """Simulate one exam; every random choice comes from `seed`, so the same seed gives the same exam."""
    rng = np.random.default_rng(seed)
    if failure == "random":
        failure = _draw_failure(rng)
    if failure is not None and failure not in FAILURES:
        raise ValueError(f"unknown failure mode {failure!r}; one of {', '.join(FAILURES)}")
    n = n_slices or int(rng.choice([4, 4, 4, 5, 6, 8]))
    stage, drawn_kpa = draw_stage(rng, stage_mix)
    if failure == "very_stiff" and liver_kpa is None:
        stage, drawn_kpa = "F4", float(rng.uniform(*VERY_STIFF_KPA))
    liver_kpa = float(liver_kpa if liver_kpa is not None else drawn_kpa)
    snr = float(snr if snr is not None else rng.uniform(10, 40))
    amp = float(rng.uniform(*WAVE_AMPLITUDE_RAD)) if failure != "driver_off" else 0.0
    conversion = float(rng.uniform(*CONVERSION_STRENGTH))
    patient = A.random_patient(rng, ascites=failure == "ascites")
    mech = draw_mechanics(rng, liver_kpa)
    st = settings
    z0 = rng.uniform(0.0, 0.15)
    levels = [float(z0 + k * st.step_mm / LEVEL_SPAN_MM) for k in range(n)]
    bad_slices = set(rng.choice(n, size=int(rng.integers(1, 3)), replace=False).tolist()) if failure == "breath_hold" else set()
    shape = (n, st.rows, st.cols)
    out = {k: np.zeros(shape, np.float32) for k in ("true", "stiff", "conf")}
    labels_all = np.zeros(shape, np.uint8)
    body_all = np.zeros(shape, bool)
    driver_all = np.zeros(shape, bool)
    mag_all = np.zeros((n, st.offsets) + shape[1:], np.float32)
    phase_all = np.zeros((n, st.offsets) + shape[1:], np.float32)
    wave_all = np.zeros((n, 8) + shape[1:], np.float32)
    theta = 2 * np.pi * np.arange(st.offsets) / st.offsets
    ghost = float(rng.uniform(0.02, 0.07))
    ghost_shift = st.rows // int(rng.integers(3, 6))
    # what changes between offsets comes from a stream of its own, so that the anatomy, waves and noise
    # drawn from `rng` stay those of the same seed
    rng_offsets = np.random.default_rng([seed, 7919])
    signal = OffsetSignal.draw(rng_offsets, ghost, ghost_shift)
    thickness_px = st.thickness_mm / st.spacing_mm
    drift_slices = int(rng_offsets.integers(1, 4)) if rng_offsets.random() < DRIFT_SHARE else 0
    for k, z in enumerate(levels):
        labels = A.slice_labels(patient, z, st.rows, st.cols, st.spacing_mm)
        driver = A.driver_mask(labels, st.spacing_mm, patient)
        gmag, eta = shear_modulus(labels, mech, liver_kpa, rng)
        if amp > 0:
            u = _wave_field(labels, driver, gmag, eta, st, rng, conversion, amp)
        else:
            u = np.zeros(labels.shape, complex)
        shading = coil_shading(labels, st.spacing_mm, rng)
        mag_true = gre_intensity(labels, failure == "iron_overload") * shading
        sigma = gre_intensity(labels, False)[labels == A.LIVER].mean() / snr if (labels == A.LIVER).any() else 0.66 / snr
        positions = _offset_positions(rng_offsets, k, bad_slices, drift_slices, st.offsets)
        draws = slice_draws(rng_offsets, signal, st.offsets, labels.shape)
        fields_u, fields_m = [], []
        for o in range(st.offsets):
            if positions[o] == (0.0, 0.0):
                lab_o, uo, mo = labels, u, mag_true
            else:
                lab_o, uo, tissue = _moved_position(patient, z, st, u, failure, *positions[o])
                mo = tissue * shading
            fields_u.append(uo)
            fields_m.append(offset_image(mo, lab_o, (uo * np.exp(1j * theta[o])).real, thickness_px, signal, draws[o]))
        # the drawn SNR is the liver's as measured on the acquired images, which keep only part of the
        # tissue signal (dephasing, pulsation): the noise is set against what the offsets kept
        liver = labels == A.LIVER
        if liver.any() and mag_true[liver].mean() > 0:
            kept = float(np.mean([f[liver].mean() for f in fields_m]) / mag_true[liver].mean())
            sigma *= float(np.clip(kept, 0.3, 1.5))
        for o in range(st.offsets):
            noisy = np.hypot(fields_m[o] + rng.normal(0, sigma, labels.shape), rng.normal(0, sigma, labels.shape))
            mag_all[k, o] = noisy
            sig_phi = np.clip(sigma / np.maximum(fields_m[o], 1e-6), 0, np.pi)
            ph = (fields_u[o] * np.exp(1j * theta[o])).real + rng.normal(0, 1, labels.shape) * sig_phi
            # unwrapped phase, as scanners unwrap before inversion; background noise stays within +-pi
            phase_all[k, o] = np.where(fields_m[o] > 0.02, ph, np.angle(np.exp(1j * ph)))
        harmonic = first_harmonic(phase_all[k].astype(float))
        # the scanner processes only where the magnitude shows signal: background phase is noise
        body = ndimage.binary_opening(mag_all[k].mean(axis=0) > 4 * sigma, iterations=2)
        body = ndimage.binary_fill_holes(body)
        g_inv, conf = invert(np.where(body, harmonic, 0), st.spacing_mm * 1e-3, st.frequency_hz)
        # the map is reported where the fit window lies inside the processed region
        body = ndimage.binary_erosion(body, iterations=REPORT_MARGIN_PX)
        out["true"][k] = gmag
        out["stiff"][k] = np.where(body, g_inv / 1000.0, 0)
        out["conf"][k] = np.where(body, conf, 0)
        for t in range(8):
            wave_all[k, t] = (harmonic * np.exp(2j * np.pi * t / 8)).real
        labels_all[k], body_all[k], driver_all[k] = labels, body, driver
    exam = SynthExam(
        seed=seed,
        settings=st,
        stage_drawn=stage,
        liver_kpa_true=liver_kpa,
        loss_ratio=mech.liver_loss,
        snr=snr,
        amplitude_rad=amp,
        failure=failure,
        labels=labels_all,
        true_kpa=out["true"],
        stiffness_kpa=out["stiff"],
        confidence=out["conf"],
        magnitude=mag_all,
        phase_rad=phase_all,
        wave=wave_all,
        body=body_all,
        driver=driver_all,
        levels=levels,
        rejected_slices=frozenset(bad_slices),
    )
    exam.gt_roi = reader_roi(exam)
    return exam
