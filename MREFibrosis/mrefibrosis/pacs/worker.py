"""Watch a PACS (Orthanc's REST change feed, or any DICOMweb archive); when a study becomes stable
and holds an MRE exam, measure it and store DICOM SEG, SR and overlay back into the same study.

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
from typing import ClassVar

from .. import __version__
from ..errors import ExamNotFoundError, MREFibrosisError
from ..model.runtime_probe import SERVICE_SLICES
from ..reading.exam_loader import ReadOptions
from .config import ServiceConfig
from .http_session import AuthSettings, PacsConfigError, PacsError, PacsUnavailable, make_session
from .jobs import DONE, FAILED, IGNORED, Job, JobStore

log = logging.getLogger("mrefibrosis.worker")


@dataclass
class WorkerConfig(ServiceConfig):
    """One JSON file configures a site (see docs/pacs.md). Secrets are never in it: `auth` names the
    environment variable or file that holds them. The segmenter, preset and read options come from
    `ServiceConfig`."""

    source: str = "orthanc"  # "orthanc" (Orthanc REST change feed) or "dicomweb" (QIDO/WADO/STOW-RS)
    orthanc_url: str = "http://127.0.0.1:8042"
    dicomweb_url: str | None = None  # e.g. http://pacs:8042/dicom-web or https://pacs/dcm4chee-arc/aets/DCM4CHEE/rs
    qido_prefix: str | None = None
    wado_prefix: str | None = None
    stow_prefix: str | None = None
    auth: dict = field(default_factory=dict)  # {"type": "basic", "username": ..., "password_env": ...} (docs/pacs.md)
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout_seconds: float = 30.0
    stable_seconds: float = 10.0  # DICOMweb: an unchanged instance count for this long means the study is complete
    lookback_days: int | None = 2  # DICOMweb: search studies dated from the watermark minus this (None: all)
    page_size: int = 100
    jobs_db: str = "mrefibrosis-jobs.sqlite"
    work_dir: str | None = None
    poll_seconds: float = 2.0
    max_backoff_seconds: float = 300.0

    WHAT: ClassVar[str] = "worker"


def make_source(config: WorkerConfig):
    """The PACS connection the config names, on one session (auth, TLS, timeouts)."""
    session = make_session(AuthSettings.from_dict(config.auth, "auth"), config.verify_tls, config.ca_bundle, config.timeout_seconds)
    if config.source == "orthanc":
        from .orthanc_source import OrthancRestSource

        return OrthancRestSource(config.orthanc_url, session)
    if config.source == "dicomweb":
        if not config.dicomweb_url:
            raise PacsConfigError("source 'dicomweb' needs 'dicomweb_url' in the worker config.")
        from .dicomweb_source import DicomWebSource

        return DicomWebSource(
            config.dicomweb_url,
            session,
            qido_prefix=config.qido_prefix,
            wado_prefix=config.wado_prefix,
            stow_prefix=config.stow_prefix,
            timeout_seconds=config.timeout_seconds,
            stable_seconds=config.stable_seconds,
            lookback_days=config.lookback_days,
            page_size=config.page_size,
        )
    raise PacsConfigError(f"unknown source '{config.source}' in the worker config; use orthanc or dicomweb.")


class PacsWorker:
    def __init__(self, config: WorkerConfig, segmenter=None):
        self.config = config
        self.source = make_source(config)
        self.jobs = JobStore(config.jobs_db)
        if segmenter is None:
            segmenter = config.segmenter_settings().build(expected_slices=SERVICE_SLICES)  # long-running: the faster runtime here
        self.segmenter = segmenter
        describe = getattr(segmenter, "describe", lambda: {})()
        self.model_version = f"{__version__}:{describe.get('model_version', 'unknown')}:{describe.get('sha256', '')[:16]}"
        self.options = ReadOptions(**config.read_options)

    # ---------------------------------------------------------------- changes
    def poll(self) -> int:
        """Queue the studies that became stable since the last poll; returns how many were new."""
        return self.source.poll(self.jobs, self.model_version)

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
            self._after(job)
            log.info("study %s: not an MRE exam, ignored", job.study[:12])
            return IGNORED
        except MREFibrosisError as exc:
            self.jobs.finish(job, FAILED, str(exc))
            self._after(job)
            log.error("study %s: %s", job.study[:12], exc)
            return FAILED
        except Exception as exc:  # one bad exam never stops the worker
            self.jobs.finish(job, FAILED, f"internal error {type(exc).__name__}: {exc}")
            log.exception("study %s: internal error", job.study[:12])
            return FAILED
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.jobs.finish(job, DONE, json.dumps(timings))
        self._after(job)
        log.info("study %s: results stored in %.1f s %s", job.study[:12], time.perf_counter() - t0, timings)
        return DONE

    def _after(self, job: Job) -> None:
        try:
            self.source.after_done(self.jobs, job.study)
        except PacsUnavailable as exc:  # only bookkeeping for updated studies: the result stands
            log.warning("study %s: %s", job.study[:12], exc)

    def _process(self, job: Job, work: Path) -> dict:
        from ..pipeline import process_many

        timings = {}
        t = time.perf_counter()
        source = work / "in"
        source.mkdir()
        self.source.fetch(job.study, source)
        timings["download_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        outcomes = list(process_many([source], work / "out", self.options, self.config.preset, self.segmenter, dicom=True))
        timings["process_s"] = round(time.perf_counter() - t, 3)
        failed = [o.error for o in outcomes if o.error]
        t = time.perf_counter()
        results = [f for o in outcomes if o.result is not None for f in sorted((o.out_dir / "dicom").glob("*.dcm"))]
        self.source.store(results)
        timings["store_s"] = round(time.perf_counter() - t, 3)
        if failed:
            raise MREFibrosisError("; ".join(failed))
        return timings

    # ---------------------------------------------------------------- loop
    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("watching %s (model %s)", self.source.name, self.model_version)
        while not stop.is_set():
            try:
                self.poll()
            except PacsUnavailable as exc:
                log.warning("%s", exc)
            except PacsError as exc:  # e.g. refused credentials: say it each poll, keep the worker up
                log.error("%s", exc)
            self.run_due()
            stop.wait(self.config.poll_seconds)


OrthancWorker = PacsWorker  # the name before DICOMweb sources existed
