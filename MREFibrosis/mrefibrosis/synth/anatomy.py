"""Axial anatomy at liver level: smooth random organ shapes that vary by patient and by slice.

Image convention as on the scanner (radiological): patient right on the image left, anterior at
the top. Coordinates are millimetres from the image centre, x to the image right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AIR, FAT, MUSCLE, BONE, LIVER, VESSEL, GALLBLADDER, SPLEEN, STOMACH, KIDNEY, GAS, ASCITES, VISCERA = range(13)
TISSUE_NAMES = ["air", "fat", "muscle", "bone", "liver", "vessel", "gallbladder", "spleen", "stomach", "kidney", "gas", "ascites", "viscera"]


@dataclass
class Patient:
    """Per-patient shape parameters; slices are drawn from them at different levels z (0 top, 1 bottom)."""

    seed: int
    half_width: float
    half_height: float
    fat_mm: float
    wall_mm: float
    liver_scale: float
    liver_shift: tuple[float, float]
    has_gallbladder: bool
    ascites_mm: float
    harmonics: dict
    vessels: list  # (angle, length fraction, width mm, curvature)
    kidney_level: float


def random_patient(rng: np.random.Generator, ascites: bool = False) -> Patient:
    def harm(n=5, amp=0.06):
        return (rng.normal(0, amp, n) / (1 + np.arange(n)), rng.uniform(0, 2 * np.pi, n))

    return Patient(
        seed=int(rng.integers(1 << 31)),
        half_width=float(rng.uniform(130, 175)),
        half_height=float(rng.uniform(95, 130)),
        fat_mm=float(rng.uniform(8, 30)),
        wall_mm=float(rng.uniform(7, 14)),
        liver_scale=float(rng.uniform(0.85, 1.15)),
        liver_shift=(float(rng.normal(0, 8)), float(rng.normal(0, 6))),
        has_gallbladder=bool(rng.random() < 0.55),
        ascites_mm=float(rng.uniform(8, 16)) if ascites else 0.0,
        harmonics={k: harm() for k in ("body", "inner", "liver", "lobe", "spleen", "stomach", "kidney", "gb")},
        vessels=[
            (float(rng.uniform(-2.6, 0.4)), float(rng.uniform(0.45, 0.9)), float(rng.uniform(3, 8)), float(rng.normal(0, 0.4)))
            for _ in range(int(rng.integers(4, 8)))
        ],
        kidney_level=float(rng.uniform(0.35, 0.6)),
    )


def _blob(x, y, cx, cy, rx, ry, harmonics, z=0.0):
    """Star-shaped region with a smoothly perturbed radius (harmonics drift slowly with z)."""
    dx, dy = (x - cx) / max(rx, 1e-3), (y - cy) / max(ry, 1e-3)
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    amps, phases = harmonics
    edge = np.ones_like(theta)
    for k, (a, p) in enumerate(zip(amps, phases), start=2):
        edge += a * np.cos(k * theta + p + 0.8 * z)
    return r <= edge


def slice_labels(p: Patient, z: float, rows: int, cols: int, spacing_mm: float, dy_mm: float = 0.0, detail_z: float | None = None) -> np.ndarray:
    """Tissue label map of one slice at level z; dy_mm shifts the anatomy (breathing). The small
    random details (vessel cross-sections, gas) are drawn for level `detail_z` (default z): a slice
    moved by less than its thickness still shows the same vessels."""
    rng = np.random.default_rng(p.seed + int((z if detail_z is None else detail_z) * 1000))
    y, x = (np.mgrid[0:rows, 0:cols] - np.array([(rows - 1) / 2, (cols - 1) / 2])[:, None, None]) * spacing_mm
    y = y - dy_mm
    bw, bh = p.half_width, p.half_height
    H = p.harmonics
    lab = np.full((rows, cols), AIR, np.uint8)
    body = _blob(x, y, 0, 0, bw, bh, H["body"], z)
    lab[body] = FAT
    # fat thickness varies a little around the body: body harmonics plus small ones of its own
    ih = (H["body"][0] + 0.3 * H["inner"][0], H["body"][1])
    wall = _blob(x, y, 0, 0, bw - p.fat_mm, bh - p.fat_mm, ih, z)
    lab[wall] = MUSCLE
    inner = _blob(x, y, 0, 0, bw - p.fat_mm - p.wall_mm, bh - p.fat_mm - p.wall_mm, ih, z)
    lab[inner] = VISCERA
    # spine, paraspinal muscles, posterior fat
    sy = bh * 0.42
    lab[inner & (np.hypot(x, y - (sy + 40)) < 45)] = MUSCLE
    lab[np.hypot(x, (y - sy) * 1.1) < 19] = BONE
    lab[(np.abs(x) < 7) & (y > sy) & (y < sy + 38)] = BONE
    # liver (image left), left lobe across the midline on upper slices
    s = p.liver_scale * (1.0 - 0.25 * z)
    lx, ly = -bw * 0.42 + p.liver_shift[0], -bh * 0.08 + p.liver_shift[1] + 10 * z
    liver = _blob(x, y, lx, ly, bw * 0.48 * s, bh * 0.72 * s, H["liver"], z)
    if z < 0.6:
        liver |= _blob(x, y, bw * 0.05, -bh * 0.42, bw * 0.38 * (1 - z), bh * 0.22 * (1 - z), H["lobe"], z)
    liver &= inner
    liver &= ~(np.hypot(x, y - sy) < 45)
    if p.ascites_mm > 0:
        rim = ndimage.binary_dilation(liver, iterations=int(p.ascites_mm / spacing_mm)) & inner & ~liver
        lab[rim] = ASCITES
    lab[liver] = LIVER
    # hepatic and portal vessels: branches from the hilum, plus round cross-sections
    hx, hy = lx + bw * 0.22 * s, ly + bh * 0.1
    for angle, frac, width, curv in p.vessels:
        t = np.linspace(0, frac * bw * 0.5 * s, 60)
        a = angle + curv * np.linspace(0, 1, 60) + 0.3 * z
        px, py = hx + t * np.cos(a), hy + t * np.sin(a)
        for qx, qy in zip(px[::3], py[::3]):
            lab[liver & (np.hypot(x - qx, y - qy) < width / 2)] = VESSEL
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = lx + rng.normal(0, bw * 0.15), ly + rng.normal(0, bh * 0.2)
        lab[liver & (np.hypot(x - cx, y - cy) < rng.uniform(2.5, 6))] = VESSEL
    # aorta and inferior vena cava
    lab[np.hypot(x - 16, y - (sy - 32)) < 11] = VESSEL
    lab[inner & (np.hypot((x + 24) / 1.3, y - (sy - 34)) < 10)] = VESSEL
    if p.has_gallbladder and z > 0.35:
        gb = _blob(x, y, lx + bw * 0.25 * s, ly + bh * 0.05, 16, 24, H["gb"], z) & (lab == LIVER)
        lab[gb] = GALLBLADDER
    # spleen and stomach on the image right
    ss = max(0.15, 1.0 - 0.7 * z)
    spleen = _blob(x, y, bw * 0.6, bh * 0.2, bw * 0.2 * ss, bh * 0.35 * ss, H["spleen"], z) & inner
    lab[spleen & (lab == VISCERA)] = SPLEEN
    stomach = _blob(x, y, bw * 0.33, -bh * 0.25, bw * 0.24, bh * 0.28, H["stomach"], z) & inner & (lab == VISCERA)
    lab[stomach] = STOMACH
    lab[stomach & (y < -bh * 0.25 - bh * 0.12) & (np.abs(x - bw * 0.33) < bw * 0.12)] = GAS
    # kidneys on lower slices, bowel gas anteriorly
    if z > p.kidney_level:
        kz = min(1.0, (z - p.kidney_level) * 3)
        for side in (-1, 1):
            k = _blob(x, y, side * bw * 0.4, bh * 0.28, 26 * kz + 4, 38 * kz + 4, H["kidney"], z) & inner
            lab[k & ((lab == VISCERA) | (lab == LIVER) | (lab == SPLEEN))] = KIDNEY
    if z > 0.4:
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(-bw * 0.1, bw * 0.5), rng.uniform(-bh * 0.6, 0)
            lab[(lab == VISCERA) & (np.hypot(x - cx, y - cy) < rng.uniform(4, 12))] = GAS
    return lab


def driver_mask(labels: np.ndarray, spacing_mm: float, patient: Patient) -> np.ndarray:
    """A passive driver band on the anterior right body wall (image top left), 3 pixels deep."""
    rows, cols = labels.shape
    y, x = (np.mgrid[0:rows, 0:cols] - np.array([(rows - 1) / 2, (cols - 1) / 2])[:, None, None]) * spacing_mm
    body = labels != AIR
    surface = body & ~ndimage.binary_erosion(body, iterations=3)
    return surface & (x > -patient.half_width * 0.75) & (x < -patient.half_width * 0.15) & (y < 0)
