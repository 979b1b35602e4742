"""A real Siemens MRE acquisition (shared/data/siemens-brain-mre-raw: 3 T Prisma, raw MOSAIC magnitude
and phase, no elastogram): the MOSAIC signature and the refusal of an exam without an elastogram hold
on real headers, and the breath-hold rule stays silent on a real acquisition in which nothing moved.
Skipped when ../shared is not beside the project."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mrefibrosis.errors import ExamNotFoundError
from mrefibrosis.measure.breath_hold import misregistered
from mrefibrosis.reading.classify import RAW_RESEARCH
from mrefibrosis.reading.exam_loader import ReadOptions, mre_studies, read_exam
from mrefibrosis.reading.offset_agreement import offset_figures
from mrefibrosis.reading.series import scan_folder

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "siemens-brain-mre-raw" / "dicom"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/siemens-brain-mre-raw not beside the project")


def test_both_real_series_are_raw_research_by_their_mosaic_image_type():
    scan = scan_folder(DATA)
    assert len(scan.series) == 2
    assert not mre_studies(scan, ReadOptions())  # no measurable elastogram
    for s in scan.series:
        assert "MOSAIC" in s.image_type and s.role == RAW_RESEARCH
        assert "verified signature" in s.reason


def test_the_real_raw_export_is_refused_in_one_line_that_says_what_to_do(tmp_path):
    with pytest.raises(ExamNotFoundError, match="no elastogram"):
        read_exam(DATA)
    run = subprocess.run([sys.executable, "-m", "mrefibrosis", "measure", str(DATA), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 2
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no elastogram" in lines[0] and "export its stiffness" in lines[0]
    assert "Traceback" not in run.stderr and not (tmp_path / "out" / "result.json").exists()


def _mosaic_tiles(ds) -> list[np.ndarray]:
    """The slices of a Siemens MOSAIC image: NumberOfImagesInMosaic tiles, row by row, on a square grid."""
    n = int(ds[0x0019, 0x100A].value)
    grid = int(np.ceil(np.sqrt(n)))
    image = ds.pixel_array.astype(np.float64)
    rows, cols = image.shape[0] // grid, image.shape[1] // grid
    return [image[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] for r in range(grid) for c in range(grid)][:n]


def test_the_breath_hold_rule_is_silent_on_a_real_acquisition_without_motion():
    """Magnitude of 8 wave time steps per encoding direction (the phase images' comments name the
    direction and time step of each instance): the offsets correlate 0.90-0.97 (README), lie within a
    pixel of each other, and no slice is called misregistered."""
    comments = {}
    for path in sorted(DATA.glob("046_*")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        comments[int(ds.InstanceNumber)] = str(ds.ImageComments)
    frames: dict[tuple[int, int], list[np.ndarray]] = {}
    spacing = None
    for path in sorted(DATA.glob("045_*")):
        ds = pydicom.dcmread(path)
        spacing = float(ds.PixelSpacing[0])
        text = comments[int(ds.InstanceNumber)]
        direction, step = int(re.search(r"dI\[(\d+)\]", text).group(1)), int(re.search(r"tI\[(\d+)\]", text).group(1))
        frames[(direction, step)] = _mosaic_tiles(ds)
    directions = sorted({d for d, _ in frames})
    steps = sorted({t for _, t in frames})
    assert len(directions) == 3 and len(steps) == 8
    for d in directions:
        figures = [offset_figures(np.stack([frames[(d, t)][k] for t in steps])) for k in range(5)]
        agreement = np.array([f[0] for f in figures])
        shift_mm = np.array([f[1] for f in figures]) * spacing
        assert np.all((agreement > 0.88) & (agreement < 0.99)), agreement
        assert np.all(shift_mm < 1.0), shift_mm
        assert not misregistered(agreement, shift_mm).any()
