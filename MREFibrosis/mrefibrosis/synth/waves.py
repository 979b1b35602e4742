"""Time-harmonic shear waves in one axial slice: div(G* grad U) + rho w^2 U = -s.

A 5-point finite-volume discretisation (harmonic means of G* on cell faces) solved with a sparse
direct solver. Outside the body a lossy layer absorbs the waves so that they do not reflect.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

RHO = 1000.0  # kg/m3


def omega(frequency_hz: float) -> float:
    return 2.0 * np.pi * frequency_hz


def solve_helmholtz(g_complex_pa: np.ndarray, source: np.ndarray, spacing_m: float, frequency_hz: float = 60.0) -> np.ndarray:
    """Complex displacement field U (same shape as G*), zero on the outer frame."""
    rows, cols = g_complex_pa.shape
    n = rows * cols
    g = g_complex_pa.astype(np.complex128)
    idx = np.arange(n).reshape(rows, cols)
    h2 = spacing_m * spacing_m
    diag = np.full(n, RHO * omega(frequency_hz) ** 2, dtype=np.complex128)
    r_idx, c_idx, vals = [], [], []
    for axis in (0, 1):
        a = g[:-1, :] if axis == 0 else g[:, :-1]
        b = g[1:, :] if axis == 0 else g[:, 1:]
        face = 2.0 * a * b / (a + b) / h2
        i0 = (idx[:-1, :] if axis == 0 else idx[:, :-1]).ravel()
        i1 = (idx[1:, :] if axis == 0 else idx[:, 1:]).ravel()
        f = face.ravel()
        r_idx += [i0, i1]
        c_idx += [i1, i0]
        vals += [f, f]
        np.subtract.at(diag, i0, f)
        np.subtract.at(diag, i1, f)
    # Zero displacement just outside the frame: faces to the frame count with the cell's own G*.
    edge = np.zeros((rows, cols))
    edge[0, :] += 1
    edge[-1, :] += 1
    edge[:, 0] += 1
    edge[:, -1] += 1
    diag -= (edge * g / h2).ravel()
    a_mat = sp.csc_matrix((np.concatenate(vals), (np.concatenate(r_idx), np.concatenate(c_idx))), shape=(n, n))
    a_mat = a_mat + sp.diags(diag, format="csc")
    u = splu(a_mat, permc_spec="COLAMD").solve(-source.astype(np.complex128).ravel())
    return u.reshape(rows, cols)


def conversion_source(gmag_kpa: np.ndarray, driver: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Shear waves born where the driver's compressional wave meets a change of stiffness.

    The driver also launches a compressional wave (wavelength of metres, so it reaches every
    interface almost at once, travelling away from the driver). For displacement u_c = exp(i k_p d.x),
    div(G grad u_c) has the source term grad G . grad u_c ~ (grad G . d): every organ and fat/muscle
    boundary radiates shear waves in proportion to its stiffness step seen along the compressional
    wave's direction. Returned per pixel and dimensionless (grad ln|G| times the pixel size).
    """
    from scipy import ndimage

    log_g = np.log(np.maximum(ndimage.gaussian_filter(gmag_kpa, 0.7), 1e-3))
    gy, gx = np.gradient(log_g)
    dist, (ir, ic) = ndimage.distance_transform_edt(~driver, return_indices=True)
    rows, cols = np.mgrid[0 : driver.shape[0], 0 : driver.shape[1]]
    dy, dx = rows - ir, cols - ic
    norm = np.maximum(np.hypot(dx, dy), 1.0)
    return (gx * dx + gy * dy) / norm
