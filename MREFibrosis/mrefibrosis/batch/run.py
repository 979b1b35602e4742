"""`mrefibrosis batch`: list exam folders, skip the done ones, score the rest on Ray, write one table."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from ..errors import MREFibrosisError
from ..model.model_file import MAGIC, MAGIC_V1
from ..model.runtime_probe import SLICES_PER_EXAM
from ..model.segmenter_settings import Runtime, SegmenterSettings
from ..results.staged_files import atomic_write_text
from .scorer import COLUMNS, ExamScorer, folder_key, read_done

log = logging.getLogger("mrefibrosis.batch")


def list_exam_folders(input_path: str | Path) -> list[Path]:
    """A CSV with a `path` column (relative to the CSV), or a folder whose subfolders are one exam each."""
    p = Path(input_path)
    if p.is_file() and p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise MREFibrosisError(f"{p.name}: the CSV needs a 'path' column listing exam folders.")
            return [(p.parent / row["path"]).resolve() for row in reader if row.get("path")]
    if p.is_dir():
        folders = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not folders:
            raise MREFibrosisError(f"{p}: no exam subfolders; give a folder with one subfolder per exam, or a CSV with a 'path' column.")
        return folders
    raise MREFibrosisError(f"{p}: not a folder or a .csv file.")


def model_version_of(model: str | None) -> str:
    from ..model.inference import default_model_path

    path = Path(model) if model else default_model_path()
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC) + 65)
    except OSError:
        raise MREFibrosisError(f"model file {path} not found; pass --model FILE.") from None
    if not (head.startswith(MAGIC) or head.startswith(MAGIC_V1)):  # (both magics have the same length)
        raise MREFibrosisError(f"{path.name} is not an MREFibrosis model file.")
    return head[len(MAGIC) : len(MAGIC) + 16].decode("ascii", "replace")


def write_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, parquet_path = out_dir / "batch_results.csv", out_dir / "batch_results.parquet"
    atomic_write_text(csv_path, buf.getvalue())
    tmp = out_dir / ".batch_results.parquet.partial"
    pq.write_table(
        pa.Table.from_pylist(
            rows, schema=pa.schema([(c, pa.float64() if c in ("mean_kpa", "median_kpa", "roi_area_cm2", "seconds") else pa.string()) for c in COLUMNS])
        ),
        tmp,
    )
    tmp.replace(parquet_path)
    return csv_path, parquet_path


def run_batch(
    input_path,
    out_dir,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    settings: SegmenterSettings = SegmenterSettings(),
    preset: str = "seed",
    read_options: dict | None = None,
) -> dict:
    """Every worker builds its segmenter from `settings`. Margins other than the defaults become
    part of the run's model version, so a rerun with other margins scores again."""
    try:
        import ray
    except ImportError:
        raise MREFibrosisError("batch needs Ray: pip install 'mrefibrosis[batch]'.") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = list_exam_folders(input_path)
    version = model_version_of(settings.model)
    margins = settings.margins
    if margins != SegmenterSettings().margins:
        version = f"{version} margins {margins.liver_edge_mm:g}/{margins.driver_mm:g} mm"
    keys = {folder_key(f): f for f in folders}
    todo = [(str(f), k) for k, f in keys.items() if read_done(out_dir, k, version) is None]
    log.info("%d exam folders, %d already done with model %s, %d to score", len(folders), len(folders) - len(todo), version, len(todo))
    t0 = time.perf_counter()
    done = failed = 0
    if todo and gpus_per_worker == 0:
        # decided once here, for every worker: on a CPU, the runtime this machine measured faster
        # for a workload this size (`runtime_probe`; cached, so it is measured once per machine)
        chosen = settings.workload_runtime(SLICES_PER_EXAM * len(todo))
        if chosen != settings.runtime.value:
            log.info("batch: %s measured faster than the default here; the workers use it", chosen)
            settings = replace(settings, runtime=Runtime(chosen))
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        ds = ray.data.from_items([{"folder": f, "key": k} for f, k in todo], override_num_blocks=len(todo))
        scored = ds.map_batches(
            ExamScorer,
            fn_constructor_kwargs=dict(
                out_dir=str(out_dir.resolve()),
                settings=settings.to_json(),
                preset=preset,
                read_options=read_options or {},
                model_version=version,
            ),
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
            num_gpus=gpus_per_worker or None,
        )
        for row in scored.iter_rows():
            for r in json.loads(row["rows_json"]):
                failed += r["status"] == "failed"
            done += 1
            rate = done / max(1e-9, time.perf_counter() - t0) * 60
            log.info("batch: %d/%d exams done, %d failed, %.1f exams/min", done, len(todo), failed, rate)
    rows = []
    for k in keys:
        rows.extend(read_done(out_dir, k, version) or [])
    csv_path, parquet_path = write_table(rows, out_dir)
    return {
        "folders": len(folders),
        "scored": len(todo),
        "skipped": len(folders) - len(todo),
        "failed": sum(r["status"] == "failed" for r in rows),
        "seconds": round(time.perf_counter() - t0, 2),
        "csv": str(csv_path),
        "parquet": str(parquet_path),
        "model_version": version,
    }
