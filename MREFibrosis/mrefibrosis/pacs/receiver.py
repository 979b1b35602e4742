"""A plain DICOM receiver for sites without Orthanc: a storage SCP that processes a study once it has
been quiet for a while and sends SEG, SR and overlay to a configured destination by C-STORE.

Only allow-listed calling AE titles may associate; only MR (and Secondary Capture) storage is
accepted. Received files are spooled under a hash of the StudyInstanceUID with counter names, so no
path is ever built from DICOM values.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pydicom

from ..errors import ExamNotFoundError, MREFibrosisError
from ..model.runtime_probe import SERVICE_SLICES
from ..reading.exam_loader import ReadOptions
from .config import ServiceConfig

log = logging.getLogger("mrefibrosis.receiver")

ACCEPTED_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture (colour elastograms: recognised, never measured)
)


@dataclass
class ReceiverConfig(ServiceConfig):
    """The storage SCP's JSON config (docs/pacs.md); the segmenter, preset and read options come
    from `ServiceConfig`."""

    ae_title: str = "MREFIBROSIS"
    bind_address: str = "127.0.0.1"
    port: int = 11112
    allowed_calling_aes: list = field(default_factory=list)
    destination: dict | None = None  # {"ae_title": ..., "host": ..., "port": ...}
    quiet_seconds: float = 5.0
    spool_dir: str = "mrefibrosis-spool"

    WHAT: ClassVar[str] = "receiver"


def study_key(study_uid: str) -> str:
    return hashlib.sha256(study_uid.encode("utf-8", "replace")).hexdigest()[:16]


class Receiver:
    def __init__(self, config: ReceiverConfig, segmenter=None):
        if not config.allowed_calling_aes:
            raise MREFibrosisError("allowed_calling_aes is empty: list the modalities and PACS that may send exams.")
        self.config = config
        self.spool = Path(config.spool_dir)
        self.spool.mkdir(parents=True, exist_ok=True)
        if segmenter is None:
            segmenter = config.segmenter_settings().build(expected_slices=SERVICE_SLICES)  # long-running: the faster runtime here
        self.segmenter = segmenter
        self.options = ReadOptions(**config.read_options)
        self._last_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._counter = 0
        self._stop = threading.Event()
        self._server = None
        self._thread = None
        self.processed: list[tuple[str, str]] = []  # (study key, outcome) for monitoring and tests

    # ---------------------------------------------------------------- SCP
    def _on_store(self, event) -> int:
        """Store the bytes as they arrived (file meta + the dataset exactly as encoded by the sender):
        decoding and re-encoding could alter values the measurement and the audit trail rely on."""
        try:
            data = event.encoded_dataset()
            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
            key = study_key(str(header.StudyInstanceUID))
        except Exception:
            return 0xC210  # cannot understand
        folder = self.spool / key
        folder.mkdir(exist_ok=True)
        with self._lock:
            self._counter += 1
            name = f"{self._counter:09d}.dcm"
        tmp = folder / f".{name}.partial"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, folder / name)
        except Exception:
            tmp.unlink(missing_ok=True)
            return 0xA700  # out of resources
        with self._lock:
            self._last_seen[key] = time.time()
        return 0x0000

    def start(self) -> Receiver:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.config.ae_title)
        ae.require_calling_aet = list(self.config.allowed_calling_aes)
        for uid in ACCEPTED_SOP_CLASSES:
            ae.add_supported_context(uid)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0
        self._server = ae.start_server((self.config.bind_address, self.config.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        self._thread = threading.Thread(target=self._loop, name="mrefibrosis-receiver", daemon=True)
        self._thread.start()
        log.info("receiving as %s on %s:%d", self.config.ae_title, self.config.bind_address, self.config.port)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(30)

    # ---------------------------------------------------------------- processing
    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            now = time.time()
            with self._lock:
                ready = [k for k, t in self._last_seen.items() if now - t >= self.config.quiet_seconds]
                for k in ready:
                    del self._last_seen[k]
            for key in ready:
                self.processed.append((key, self._process(key)))

    def _process(self, key: str) -> str:
        from ..pipeline import process_many

        folder = self.spool / key
        out = self.spool / f"{key}.out"
        try:
            outcomes = list(process_many([folder], out, self.options, self.config.preset, self.segmenter, dicom=True))
            for o in outcomes:
                if o.error:
                    log.error("study %s: %s", key, o.error)
                elif self.config.destination:
                    self._send(sorted((o.out_dir / "dicom").glob("*.dcm")))
            outcome = "done" if all(o.error is None for o in outcomes) else "failed"
        except ExamNotFoundError:
            log.info("study %s: not an MRE exam, ignored", key)
            outcome = "ignored"
        except MREFibrosisError as exc:
            log.error("study %s: %s", key, exc)
            outcome = "failed"
        except Exception as exc:  # one bad exam never stops the receiver
            log.exception("study %s: internal error %s", key, type(exc).__name__)
            outcome = "failed"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
        return outcome

    def _send(self, files: list[Path], attempts: int = 5) -> None:
        import pydicom
        from pynetdicom import AE

        dest = self.config.destination
        datasets = [pydicom.dcmread(f) for f in files]
        for attempt in range(attempts):
            ae = AE(ae_title=self.config.ae_title)
            for uid in sorted({d.SOPClassUID for d in datasets}):
                ae.add_requested_context(uid)
            assoc = ae.associate(dest["host"], int(dest["port"]), ae_title=dest["ae_title"])
            if assoc.is_established:
                try:
                    bad = [d for d in datasets if (s := assoc.send_c_store(d)) is None or getattr(s, "Status", 0xC000) != 0]
                finally:
                    assoc.release()
                if not bad:
                    return
            delay = min(60.0, 2.0**attempt)
            log.warning("destination %s unavailable, retry in %.0f s", dest.get("ae_title"), delay)
            if self._stop.wait(delay):
                break
        raise MREFibrosisError(f"could not store results at {dest.get('ae_title')} after {attempts} attempts")
