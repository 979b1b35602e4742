"""One synthetic MRE exam: anatomy -> tissue mechanics -> waves -> encoding -> scanner inversion,
and the reader-like ground-truth ROI."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import anatomy as A
from .inversion import first_harmonic, invert
from .waves import solve_helmholtz

# |G*| (kPa) and loss ratio G''/G' per tissue; liver and spleen depend on the exam.
MECHANICS = {
    A.AIR: (1.0, 3.0), A.FAT: (1.8, 0.3), A.MUSCLE: (3.0, 0.3), A.BONE: (25.0, 0.1), A.VESSEL: (0.4, 1.0),
    A.GALLBLADDER: (0.3, 1.0), A.STOMACH: (2.0, 0.4), A.KIDNEY: (3.5, 0.3), A.GAS: (0.5, 2.0),
    A.ASCITES: (0.05, 2.0), A.VISCERA: (2.2, 0.35),
}
# Relative GRE magnitude intensity per tissue (TE ~ 20 ms).
INTENSITY = {
    A.AIR: 0.0, A.FAT: 0.85, A.MUSCLE: 0.3, A.BONE: 0.08, A.LIVER: 0.33, A.VESSEL: 0.6, A.GALLBLADDER: 0.75,
    A.SPLEEN: 0.55, A.STOMACH: 0.45, A.KIDNEY: 0.5, A.GAS: 0.02, A.ASCITES: 0.8, A.VISCERA: 0.5,
}
STAGE_MEAN_KPA = {"F0": 1.9, "F1": 2.3, "F2": 3.1, "F3": 3.8, "F4": 5.0}
STAGE_SD_KPA = 0.45
FAILURES = {"iron_overload": 0.04, "ascites": 0.03, "breath_hold": 0.04}

READER_EDGE_MM = 10.0
READER_VESSEL_MM = 5.0
READER_DRIVER_MM = 35.0
MIN_PIECE_CM2 = 1.0


@dataclass
class SynthSettings:
    rows: int = 256
    cols: int = 256
    spacing_mm: float = 1.5625
    thickness_mm: float = 10.0
    step_mm: float = 11.0
    frequency_hz: float = 60.0
    offsets: int = 4
    confidence_threshold: float = 0.95


@dataclass
class SynthExam:
    seed: int
    settings: SynthSettings
    stage_drawn: str
    liver_kpa_true: float
    loss_ratio: float
    snr: float
    amplitude_rad: float  # median wave amplitude 10-40 mm from the driver
    failure: str | None
    labels: np.ndarray  # (S, R, C) tissue labels of the reference breath-hold
    true_kpa: np.ndarray  # (S, R, C) |G*|
    stiffness_kpa: np.ndarray  # (S, R, C) scanner inversion |G*|
    confidence: np.ndarray  # (S, R, C) 0-1
    magnitude: np.ndarray  # (S, offsets, R, C) 0..~1.4
    phase_rad: np.ndarray  # (S, offsets, R, C), unwrapped
    wave: np.ndarray  # (S, 8, R, C) first-harmonic wave images, radians
    body: np.ndarray  # (S, R, C) where the scanner reports stiffness
    driver: np.ndarray  # (S, R, C)
    gt_roi: np.ndarray = field(default=None)  # (S, R, C) reader-like ROI
    levels: list = field(default_factory=list)


def _smooth_noise(rng, shape, sigma_px):
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma_px)
    return f / (f.std() + 1e-12)


def draw_stage(rng: np.random.Generator, mix: dict[str, float] | None) -> tuple[str, float]:
    mix = mix or {k: 1.0 for k in STAGE_MEAN_KPA}
    names = list(mix)
    w = np.array([mix[n] for n in names], float)
    stage = names[int(rng.choice(len(names), p=w / w.sum()))]
    kpa = float(np.clip(rng.normal(STAGE_MEAN_KPA[stage], STAGE_SD_KPA), 1.4, 9.0))
    return stage, kpa


LIVER_HETEROGENEITY = 0.10  # SD of smooth within-slice variation (fibrosis is patchy)
SLICE_TO_SLICE = 0.06  # SD of a per-slice factor


def _shear_modulus(labels, liver_kpa, loss, rng):
    mag = np.zeros(labels.shape)
    eta = np.zeros(labels.shape)
    for t, (g, e) in MECHANICS.items():
        sel = labels == t
        mag[sel], eta[sel] = g, e
    liver = labels == A.LIVER
    field = liver_kpa * (1.0 + SLICE_TO_SLICE * rng.normal()) * (1.0 + LIVER_HETEROGENEITY * _smooth_noise(rng, labels.shape, 10))
    mag[liver] = np.clip(field, 0.5 * liver_kpa, 2.0 * liver_kpa)[liver]
    eta[liver] = loss
    spleen = labels == A.SPLEEN
    mag[spleen], eta[spleen] = 4.5 + 0.5 * (liver_kpa - 2.0), 0.3
    return mag, eta


def _solve_slice(labels, gmag_kpa, eta, driver, spacing_mm, freq):
    body = labels != A.AIR
    rr, cc = np.nonzero(body)
    m = 10
    r0, r1 = max(rr.min() - m, 0), min(rr.max() + m + 1, labels.shape[0])
    c0, c1 = max(cc.min() - m, 0), min(cc.max() + m + 1, labels.shape[1])
    gprime = gmag_kpa * 1000.0 / np.sqrt(1 + eta**2)
    g = gprime * (1 + 1j * eta)
    u = np.zeros(labels.shape, complex)
    u[r0:r1, c0:c1] = solve_helmholtz(g[r0:r1, c0:c1], driver[r0:r1, c0:c1].astype(float), spacing_mm * 1e-3, freq)
    return u


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
        u = rng.random()
        failure = None
        acc = 0.0
        for name, p in FAILURES.items():
            acc += p
            if u < acc:
                failure = name
                break
    n = n_slices or int(rng.choice([4, 4, 4, 5, 6, 8]))
    stage, drawn_kpa = draw_stage(rng, stage_mix)
    liver_kpa = float(liver_kpa if liver_kpa is not None else drawn_kpa)
    loss = float(rng.uniform(0.2, 0.3))
    snr = float(snr if snr is not None else rng.uniform(10, 40))
    amp = float(rng.uniform(1.2, 2.5))
    patient = A.random_patient(rng, ascites=failure == "ascites")
    st = settings
    z0 = rng.uniform(0.0, 0.15)
    levels = [float(z0 + k * st.step_mm / 110.0) for k in range(n)]
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
    for k, z in enumerate(levels):
        labels = A.slice_labels(patient, z, st.rows, st.cols, st.spacing_mm)
        driver = A.driver_mask(labels, st.spacing_mm, patient)
        gmag, eta = _shear_modulus(labels, liver_kpa, loss, rng)
        u = _solve_slice(labels, gmag, eta, driver, st.spacing_mm, st.frequency_hz)
        liver = labels == A.LIVER
        # amplitude is set near the driver, so attenuation (stiff liver, ascites) shows deeper in
        near = ndimage.distance_transform_edt(~driver) * st.spacing_mm
        band = (labels != A.AIR) & (near > 10) & (near < 40)
        ref = np.median(np.abs(u[band])) if band.any() else np.abs(u).max()
        u *= amp / max(ref, 1e-30)
        intensity = np.vectorize(INTENSITY.get)(labels).astype(float)
        if failure == "iron_overload":
            intensity[liver] *= 0.02  # T2* well under the echo time: almost no liver signal
            intensity[labels == A.SPLEEN] *= 0.3
        yy = np.arange(st.rows)[:, None] * st.spacing_mm
        bias = (1.0 + 0.35 * np.exp(-yy / 90.0)) * (1.0 + 0.1 * _smooth_noise(rng, labels.shape, 40))
        mag_true = intensity * bias
        sigma = INTENSITY[A.LIVER] / snr
        fields_u, fields_m = [], []
        for o in range(st.offsets):
            if k in bad_slices and o % 2 == 1:
                shift = rng.uniform(10, 20) / st.spacing_mm
                uo = ndimage.shift(u.real, (shift, 0), order=1) + 1j * ndimage.shift(u.imag, (shift, 0), order=1)
                mo = ndimage.shift(mag_true, (shift, 0), order=1)
            else:
                uo, mo = u, mag_true
            fields_u.append(uo)
            fields_m.append(mo)
        for o in range(st.offsets):
            noisy = np.hypot(fields_m[o] + rng.normal(0, sigma, labels.shape), rng.normal(0, sigma, labels.shape))
            mag_all[k, o] = noisy
            sig_phi = np.clip(sigma / np.maximum(fields_m[o], 1e-6), 0, np.pi)
            ph = (fields_u[o] * np.exp(1j * theta[o])).real + rng.normal(0, 1, labels.shape) * sig_phi
            # unwrapped phase, as scanners unwrap before inversion; background noise stays within +-pi
            phase_all[k, o] = np.where(fields_m[o] > 0.02, ph, np.angle(np.exp(1j * ph)))
        harmonic = first_harmonic(phase_all[k].astype(float))
        g_inv, conf = invert(harmonic, st.spacing_mm * 1e-3, st.frequency_hz)
        body = ndimage.binary_opening(mag_all[k].mean(axis=0) > 3 * sigma, iterations=2)
        body = ndimage.binary_fill_holes(body)
        out["true"][k] = gmag
        out["stiff"][k] = np.where(body, g_inv / 1000.0, 0)
        out["conf"][k] = np.where(body, conf, 0)
        for t in range(8):
            wave_all[k, t] = (harmonic * np.exp(2j * np.pi * t / 8)).real
        labels_all[k], body_all[k], driver_all[k] = labels, body, driver
    exam = SynthExam(
        seed=seed, settings=st, stage_drawn=stage, liver_kpa_true=liver_kpa, loss_ratio=loss, snr=snr, amplitude_rad=amp,
        failure=failure, labels=labels_all, true_kpa=out["true"], stiffness_kpa=out["stiff"], confidence=out["conf"],
        magnitude=mag_all, phase_rad=phase_all, wave=wave_all, body=body_all, driver=driver_all, levels=levels,
    )
    exam.gt_roi = reader_roi(exam)
    return exam


def reader_roi(exam: SynthExam, valid: np.ndarray | None = None) -> np.ndarray:
    """What a careful reader draws: liver, >= 95 % confidence, >= 1 cm inside the liver edge, away from
    vessels, gallbladder and the driver, pieces under 1 cm2 dropped."""
    st = exam.settings
    px = st.spacing_mm
    roi = np.zeros(exam.labels.shape, bool)
    min_px = MIN_PIECE_CM2 * 100.0 / (px * px)
    for k in range(exam.labels.shape[0]):
        lab = exam.labels[k]
        liver = lab == A.LIVER
        if not liver.any():
            continue
        inside = ndimage.distance_transform_edt(liver) * px >= READER_EDGE_MM
        tubes = (lab == A.VESSEL) | (lab == A.GALLBLADDER)
        away = ndimage.distance_transform_edt(~tubes) * px >= READER_VESSEL_MM
        far = ndimage.distance_transform_edt(~exam.driver[k]) * px >= READER_DRIVER_MM
        r = inside & away & far & (exam.confidence[k] >= st.confidence_threshold)
        if valid is not None:
            r &= valid[k]
        comp, n = ndimage.label(r)
        if n:
            sizes = ndimage.sum(r, comp, index=np.arange(1, n + 1))
            r = np.isin(comp, 1 + np.flatnonzero(sizes >= min_px))
        roi[k] = r
    return roi
