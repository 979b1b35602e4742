"""Scoring of one exam folder, as run inside a Ray worker (no Ray import here).

Each finished folder leaves a done marker (written last, atomically) holding its table rows, so a
rerun skips it and a worker killed mid-exam only repeats that exam; outputs are overwritten in place,
never duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..errors import MREFibrosisError
from ..model.segmenter_settings import SegmenterSettings
from ..reading.exam_loader import ReadOptions
from ..results.staged_files import atomic_write_text

COLUMNS = [
    "input_key",
    "exam_key",
    "folder",
    "status",
    "status_detail",
    "mean_kpa",
    "median_kpa",
    "roi_area_cm2",
    "stage",
    "preset",
    "flags",
    "error",
    "model_version",
    "seconds",
    "node",
]
CRASH_HOOK = "MREFIBROSIS_TEST_CRASH_ONCE"  # test fault injection: a flag file path; the first exam scored dies once


def folder_key(folder: str | os.PathLike) -> str:
    return hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]


def done_marker(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / "done" / f"{key}.json"


def read_done(out_dir: Path, key: str, model_version: str) -> list[dict] | None:
    marker = done_marker(out_dir, key)
    try:
        payload = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return payload["rows"] if payload.get("model_version") == model_version else None


def score_folder(folder: str, key: str, out_dir: Path, segmenter, preset: str, options: ReadOptions, model_version: str, node: str = "") -> list[dict]:
    from ..pipeline import process_many

    crash = os.environ.get(CRASH_HOOK)
    if crash and not Path(crash).exists():
        Path(crash).write_text("crashed once")
        os._exit(1)
    t0 = time.perf_counter()
    rows = []
    base = {"input_key": key, "folder": folder, "model_version": model_version, "node": node, "preset": preset}
    try:
        for outcome in process_many([folder], Path(out_dir) / "exams" / key, options, preset, segmenter):
            row = dict(base, exam_key=outcome.exam_key, seconds=round(time.perf_counter() - t0, 3))
            if outcome.error:
                rows.append(dict(row, status="failed", error=outcome.error))
                continue
            rows.append(dict(row, **outcome.result.batch_fields(), error=None))
    except MREFibrosisError as exc:
        rows = [dict(base, exam_key=None, status="failed", error=str(exc), seconds=round(time.perf_counter() - t0, 3))]
    except Exception as exc:  # a broken exam never stops the run
        rows = [
            dict(
                base, exam_key=None, status="failed", error=f"internal error {type(exc).__name__}: {str(exc)[:200]}", seconds=round(time.perf_counter() - t0, 3)
            )
        ]
    rows = [{c: r.get(c) for c in COLUMNS} for r in rows]
    marker = done_marker(out_dir, key)
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"model_version": model_version, "rows": rows}))
    return rows


class ExamScorer:
    """Ray Data callable class: loads the model once per worker, scores one folder per row."""

    def __init__(
        self,
        out_dir: str,
        settings: dict,
        preset: str,
        read_options: dict,
        model_version: str,
    ):
        self.out_dir = Path(out_dir)
        self.segmenter = SegmenterSettings.from_json(settings).build()  # JSON: what crosses to a Ray worker
        self.preset = preset
        self.options = ReadOptions(**read_options)
        self.model_version = model_version

    def __call__(self, batch: dict) -> dict:
        import ray

        node = ray.get_runtime_context().get_node_id()
        rows = []
        for folder, key in zip(batch["folder"], batch["key"]):
            rows.extend(score_folder(str(folder), str(key), self.out_dir, self.segmenter, self.preset, self.options, self.model_version, node))
        return {"rows_json": [json.dumps(rows)]}
