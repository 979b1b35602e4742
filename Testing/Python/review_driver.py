"""Drive a running review page from Playwright like a user: wait for rendered frames, point at
voxels, click the toolbar. Shared by the end-to-end test and the screenshot for docs/review.md."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
URL_LINE = re.compile(r"review page for exam \S+ \(.*\): (http://\S+)")

# A frame drawn by the server is shown in trame-rca's <img class="image-display-area" src="blob:...">;
# it counts when it is decoded, at the element's size, not blank, and (optionally) newer than prev.
JS_FRAME = """
([prevSrc]) => {
  const img = document.querySelector('#view-container img.image-display-area');
  if (!img || !img.src || !img.src.startsWith('blob:') || !img.complete || img.naturalWidth === 0) return null;
  if (prevSrc && img.src === prevSrc) return null;
  if (getComputedStyle(img).display === 'none') return null;
  const r = img.getBoundingClientRect();
  if (Math.abs(img.naturalWidth - Math.round(r.width)) > 2 || Math.abs(img.naturalHeight - Math.round(r.height)) > 2) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let lit = 0, n = 0;
  for (let i = 0; i < d.length; i += 4 * 7) { n++; if (d[i] + d[i + 1] + d[i + 2] > 40) lit++; }
  if (lit < 0.05 * n) return null;
  return {src: img.src, w: img.naturalWidth, h: img.naturalHeight};
}
"""

# Pixels of the ROI colour (magenta) in the current frame: R and B high, G low.
JS_ROI_PIXELS = """
() => {
  const img = document.querySelector('#view-container img.image-display-area');
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) { if (d[i] > 180 && d[i + 2] > 180 && d[i + 1] < 90) n++; }
  return n;
}
"""


def row_stroke(mask_k: np.ndarray, where: float = 0.5) -> tuple[tuple[int, int], tuple[int, int]]:
    """A horizontal stroke (i, j) across the ROI of one slice at a fraction of its height, a little
    past its ends: where a test erases."""
    rows = np.flatnonzero(mask_k.any(axis=1))
    j = int(rows[int(where * (len(rows) - 1))])
    cols = np.flatnonzero(mask_k[j])
    return (int(cols[0]) - 4, j), (int(cols[-1]) + 4, j)


def start_review(argv: list[str], timeout_s: float = 180.0) -> tuple[subprocess.Popen, str, list[str]]:
    """Start `mrefibrosis review ...`; return the process, the page URL and its output lines (a
    thread keeps reading them, so a chatty server never blocks on a full pipe)."""
    proc = subprocess.Popen([sys.executable, "-m", "mrefibrosis", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip())
            m = URL_LINE.search(line)
            if m:
                found.put(m.group(1))
        found.put(None)  # the process closed its output: it ended

    threading.Thread(target=read, daemon=True).start()
    try:
        url = found.get(timeout=timeout_s)
    except queue.Empty:
        proc.kill()
        raise RuntimeError("review page did not start in time: " + " | ".join(lines[-5:])) from None
    if url is None:
        proc.wait()
        raise RuntimeError("review exited: " + " | ".join(lines[-5:]))
    return proc, url, lines


class ReviewPageDriver:
    def __init__(self, page):
        self.p = page

    def wait_frame(self, prev_src: str | None = None, timeout_ms: int = 60_000) -> dict:
        return self.p.wait_for_function(JS_FRAME, arg=[prev_src], timeout=timeout_ms, polling=100).json_value()

    def frame_src(self) -> str:
        return self.p.eval_on_selector("#view-container img.image-display-area", "e => e.src")

    def roi_pixels(self) -> int:
        return int(self.p.evaluate(JS_ROI_PIXELS))

    def text(self, selector: str) -> str:
        return self.p.inner_text(selector).strip()

    def wait_text_change(self, selector: str, old: str, timeout_ms: int = 60_000) -> str:
        self.p.wait_for_function(
            "([s, o]) => { const e = document.querySelector(s); return e && e.textContent.trim() !== '' && e.textContent.trim() !== o; }",
            arg=[selector, old],
            timeout=timeout_ms,
            polling=50,
        )
        return self.text(selector)

    def ijk_to_page(self, points) -> list[tuple[float, float]]:
        """Exam voxels (i, j, k) to page pixels: the view's XY-to-RAS and the exam's IJK-to-RAS that
        the page publishes; Slicer's XY has its origin at the view's bottom left."""
        g = json.loads(self.p.inner_text("#view-geometry"))
        ras_to_xy = np.linalg.inv(np.array(g["xy_to_ras"]).reshape(4, 4))
        ijk_to_ras = np.array(g["ijk_to_ras"]).reshape(4, 4)
        left, top, _, height = self.p.eval_on_selector(
            "#view-container img.image-display-area", "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"
        )
        out = []
        for ijk in points:
            x, y, _, _ = ras_to_xy @ (ijk_to_ras @ np.array([*ijk, 1.0]))
            out.append((left + x, top + height - y))
        return out

    def current_slice(self) -> int:
        return int(json.loads(self.p.inner_text("#view-geometry"))["slice"])

    def drag(self, points, steps: int = 8, pause_s: float = 0.03) -> None:
        mouse = self.p.mouse
        mouse.move(*points[0])
        time.sleep(pause_s)
        mouse.down()
        for a, b in zip(points[:-1], points[1:]):
            for s in range(1, steps + 1):
                t = s / steps
                mouse.move(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                time.sleep(pause_s)
        mouse.up()

    def press(self, button: str, timeout_ms: int = 120_000) -> None:
        """Click Compute or Export and wait until the page has answered it (its answer counter moved)."""
        before = self.text("#answer-count")
        self.p.click(button)
        self.wait_text_change("#answer-count", before, timeout_ms)


def save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class DroppableProxy:
    """A TCP forwarder between the browser and the review server whose connections can all be cut
    at once: a network drop as the browser and the server see it (both ends closed mid-stream),
    while the server keeps running and a reload reconnects through the same address."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inner, _ = self.listener.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(self.target)
            except OSError:
                inner.close()
                continue
            with self._lock:
                self._pairs.append((inner, outer))
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop_all(self) -> int:
        """Cut every open connection (websocket included); return how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        return len(pairs)

    def close(self) -> None:
        self.drop_all()
        self.listener.close()
