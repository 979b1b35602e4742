"""Watch an Orthanc server; when a study becomes stable and holds an MRE exam, measure it and store
DICOM SEG, SR and overlay back into the same study.

Idempotent per study and model version (jobs in SQLite, deterministic result UIDs); an unreachable
PACS is retried with backoff; a bad exam is recorded and never stops the worker; non-MRE studies
are ignored with one log line. File names in the work folder are counters, never DICOM values.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import ExamNotFoundError, MREFibrosisError
from ..reading.exam_loader import ReadOptions
from .config import load_config
from .jobs import DONE, FAILED, IGNORED, Job, JobStore
from .orthanc_client import OrthancClient, PacsUnavailable

log = logging.getLogger("mrefibrosis.worker")


@dataclass
class WorkerConfig:
    """One JSON file configures a site (see docs/pacs.md)."""

    orthanc_url: str = "http://127.0.0.1:8042"
    orthanc_username: str | None = None
    orthanc_password: str | None = None
    model: str | None = None
    device: str = "auto"
    preset: str = "seed"
    jobs_db: str = "mrefibrosis-jobs.sqlite"
    work_dir: str | None = None
    poll_seconds: float = 2.0
    max_backoff_seconds: float = 300.0
    read_options: dict = field(default_factory=dict)

    @staticmethod
    def load(path) -> WorkerConfig:
        return load_config(WorkerConfig, path, "worker")


class OrthancWorker:
    def __init__(self, config: WorkerConfig, segmenter=None):
        self.config = config
        self.client = OrthancClient(config.orthanc_url, config.orthanc_username, config.orthanc_password)
        self.jobs = JobStore(config.jobs_db)
        if segmenter is None:
            from ..model.inference import Segmenter

            segmenter = Segmenter(config.model, device=config.device)
        self.segmenter = segmenter
        describe = getattr(segmenter, "describe", lambda: {})()
        self.model_version = f"{__version__}:{describe.get('model_version', 'unknown')}:{describe.get('sha256', '')[:16]}"
        self.options = ReadOptions(**config.read_options)

    # ---------------------------------------------------------------- changes
    def poll(self) -> int:
        """Queue the studies that became stable since the last poll; returns how many were new."""
        added = 0
        while True:
            since = self.jobs.cursor()
            answer = self.client.changes(since)
            stable = [c["ID"] for c in answer.get("Changes", []) if c.get("ChangeType") == "StableStudy"]
            added += self.jobs.enqueue(stable, self.model_version, int(answer.get("Last", since)))
            if answer.get("Done", True):
                return added

    # ---------------------------------------------------------------- jobs
    def run_due(self) -> list[tuple[str, str]]:
        """Process every due job once; returns (study, outcome) pairs."""
        outcomes = []
        for job in self.jobs.due(self.model_version):
            outcomes.append((job.study, self._run(job)))
        return outcomes

    def _run(self, job: Job) -> str:
        t0 = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix="mrefibrosis-job-", dir=self.config.work_dir))
        try:
            timings = self._process(job, work)
        except PacsUnavailable as exc:
            delay = self.jobs.retry_later(job, str(exc), self.config.max_backoff_seconds)
            log.warning("study %s: PACS unavailable, retry in %.0f s", job.study[:12], delay)
            return "retry"
        except ExamNotFoundError:
            self.jobs.finish(job, IGNORED, "no MRE exam")
            log.info("study %s: not an MRE exam, ignored", job.study[:12])
            return IGNORED
        except MREFibrosisError as exc:
            self.jobs.finish(job, FAILED, str(exc))
            log.error("study %s: %s", job.study[:12], exc)
            return FAILED
        except Exception as exc:  # one bad exam never stops the worker
            self.jobs.finish(job, FAILED, f"internal error {type(exc).__name__}: {exc}")
            log.exception("study %s: internal error", job.study[:12])
            return FAILED
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.jobs.finish(job, DONE, json.dumps(timings))
        log.info("study %s: results stored in %.1f s %s", job.study[:12], time.perf_counter() - t0, timings)
        return DONE

    def _process(self, job: Job, work: Path) -> dict:
        from ..pipeline import process_many

        timings = {}
        t = time.perf_counter()
        source = work / "in"
        source.mkdir()
        n = 0
        for series in self.client.get_json(f"/studies/{job.study}/series"):
            tags = series.get("MainDicomTags", {})
            if tags.get("Modality") in ("SEG", "SR", "PR", "KO") or str(tags.get("SeriesDescription", "")).endswith("(MREFibrosis)"):
                continue  # results (ours from an earlier run, or other tools'), not images to measure
            for instance_id in series.get("Instances", []):
                (source / f"{n:06d}.dcm").write_bytes(self.client.get_bytes(f"/instances/{instance_id}/file"))
                n += 1
        timings["download_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        outcomes = list(process_many([source], work / "out", self.options, self.config.preset, self.segmenter, dicom=True))
        timings["process_s"] = round(time.perf_counter() - t, 3)
        failed = [o.error for o in outcomes if o.error]
        t = time.perf_counter()
        for o in outcomes:
            if o.result is None:
                continue
            for f in sorted((o.out_dir / "dicom").glob("*.dcm")):
                self.client.upload(f.read_bytes())
        timings["store_s"] = round(time.perf_counter() - t, 3)
        if failed:
            raise MREFibrosisError("; ".join(failed))
        return timings

    # ---------------------------------------------------------------- loop
    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("watching %s (model %s)", self.config.orthanc_url, self.model_version)
        while not stop.is_set():
            try:
                self.poll()
            except PacsUnavailable as exc:
                log.warning("%s", exc)
            self.run_due()
            stop.wait(self.config.poll_seconds)
