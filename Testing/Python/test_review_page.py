"""The browser review page end to end: `mrefibrosis review` serves a synthetic exam with the shipped
segmenter's ROI; headless Chromium (Debian's, driven by Playwright) waits for the rendered view,
sees the ROI, erases part of it with the mouse, presses Compute and Export; the mean shown must be
the engine's `measure --roi` on the exported mask. Refusals are one line without a server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("trame_slicer")
sync_api = pytest.importorskip("playwright.sync_api")

from review_driver import CHROMIUM, ReviewPageDriver, row_stroke, start_review  # noqa: E402

from mrefibrosis.cli import main as cli_main  # noqa: E402
from mrefibrosis.reading.exam_loader import read_exam  # noqa: E402
from mrefibrosis.results.roi_files import read_roi  # noqa: E402

DOCS_SCREENSHOT = os.environ.get("MREFIBROSIS_REVIEW_SCREENSHOT")  # set to docs/review.png to refresh the docs' picture


@pytest.fixture(scope="module")
def exam_dir(simulated_ge_exam):
    return simulated_ge_exam


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_review_page_edit_compute_export_in_a_browser(exam_dir, tmp_path):
    out = tmp_path / "review-out"
    proc, url, output = start_review(["-q", "review", str(exam_dir / "dicom"), "--port", "0", "--out", str(out), "--device", "cpu"])
    try:
        assert url.startswith("http://127.0.0.1:") and "secret=" in url
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            # without the page's token the websocket never answers: no image, no exam
            stranger = browser.new_page(viewport={"width": 1280, "height": 760})
            stranger.goto(url.split("?")[0] + "?secret=" + "x" * 32, wait_until="domcontentloaded")
            with pytest.raises(sync_api.TimeoutError):
                ReviewPageDriver(stranger).wait_frame(timeout_ms=6_000)
            stranger.close()

            page = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
            page.goto(url, wait_until="domcontentloaded")
            d = ReviewPageDriver(page)
            d.wait_frame(timeout_ms=120_000)
            assert "exam" in page.title() and "MREFibrosis" in page.title()
            assert d.roi_pixels() > 100, "the automatic ROI is not drawn on the view"
            header = pydicom.dcmread(next(p for p in sorted((exam_dir / "dicom").rglob("*")) if p.is_file()), stop_before_pixels=True)
            identifiers = [str(header.PatientName), str(header.PatientID)]
            assert all(len(v) > 2 for v in identifiers)
            for shown in (page.title(), page.content(), "\n".join(output)):
                assert not any(v in shown for v in identifiers), "a patient identifier is shown"

            # the segmenter's ROI as exported before any edit: where to erase
            d.press("#btn-export")
            assert d.text("#error-text") == ""
            exam = read_exam(exam_dir / "dicom")
            (key_dir,) = out.iterdir()
            before = read_roi(key_dir / "roi.seg.nrrd", exam.geometry)
            k = d.current_slice()
            assert before[k].sum() > 50, "the shown slice has no ROI to edit"

            page.click("#btn-erase")
            edits = d.text("#edit-count")
            frame = d.frame_src()
            (i0, j), (i1, _) = row_stroke(before[k])
            d.drag(d.ijk_to_page([(i0, j, k), (i1, j, k)]))
            d.wait_text_change("#edit-count", edits)
            d.wait_frame(prev_src=frame)

            # Scissors: a small square inside the ROI, erased on the shown slice only
            page.click("#btn-scissors")
            edits, frame = d.text("#edit-count"), d.frame_src()
            inside = np.argwhere(before[k])
            away = inside[np.abs(inside[:, 0] - j) >= 12]  # clear of the erase stroke's brush
            jj, ii = away[len(away) // 2]
            square = [(ii - 5, jj - 5), (ii + 5, jj - 5), (ii + 5, jj + 5), (ii - 5, jj + 5), (ii - 5, jj - 5)]
            d.drag(d.ijk_to_page([(i, j, k) for i, j in square]), steps=4)
            d.wait_text_change("#edit-count", edits)
            d.wait_frame(prev_src=frame)

            d.press("#btn-compute")
            shown_mean = d.text("#result-mean")
            status = d.text("#result-status")
            page.check("#chk-dicom")
            d.press("#btn-export")
            assert d.text("#error-text") == ""
            assert {"roi.seg.nrrd", "SEG.dcm", "SR.dcm"} <= set(d.text("#export-text").split(": ", 1)[1].split(", "))
            png = page.screenshot()
            if DOCS_SCREENSHOT:
                Path(DOCS_SCREENSHOT).write_bytes(png)
            browser.close()
    finally:
        _stop(proc)

    after = read_roi(key_dir / "roi.seg.nrrd", exam.geometry)
    erased = before & ~after
    assert 10 < erased[k].sum() < before[k].sum(), "the stroke did not erase part of the ROI on its slice"
    assert erased[k, jj, ii], "the scissors did not cut the square out of the ROI"
    assert not erased[np.arange(len(after)) != k].any() and not (after & ~before).any(), "only the stroked slice may change"
    # the known answer: the engine measuring the exported mask from the DICOM files
    assert cli_main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(key_dir / "roi.seg.nrrd"), "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "result.json").read_text())
    exported = json.loads((key_dir / "result.json").read_text())
    assert exported["mean_kpa"] == pytest.approx(cli["mean_kpa"], rel=1e-9) and exported["status_detail"] == cli["status_detail"]
    assert shown_mean == (f"{cli['mean_kpa']:.2f} kPa" if cli["mean_kpa"] is not None else "-")
    assert status.split(";")[0].split(" with ")[0].split(":")[0] == cli["status"] and "_" not in status


def _one_line_error(argv: list[str]) -> str:
    r = subprocess.run([sys.executable, "-m", "mrefibrosis", "-q", *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_refusals_are_one_line(exam_dir, tmp_path):
    assert "is not a folder" in _one_line_error(["review", str(tmp_path / "missing")])
    assert "--token" in _one_line_error(["review", str(exam_dir / "dicom"), "--host", "0.0.0.0"])
    assert "at least 16 characters" in _one_line_error(["review", str(exam_dir / "dicom"), "--host", "0.0.0.0", "--token", "short"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is in use" in _one_line_error(["review", str(exam_dir / "dicom"), "--port", str(port)])
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(Path(__file__), empty / "notes.txt")
    refusal = _one_line_error(["review", str(empty), "--port", "0"]).replace("No MRE", "no MRE")
    assert "no MRE" in refusal
    # every option the refusal names is one `review` takes (it reads the exam as measure does)
    usage = subprocess.run([sys.executable, "-m", "mrefibrosis", "review", "-h"], capture_output=True, text=True, timeout=60).stdout
    for option in re.findall(r"--[a-z][a-z-]+", refusal):
        assert option in usage, f"the refusal suggests {option}, which review does not take"
