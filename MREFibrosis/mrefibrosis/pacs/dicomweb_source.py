"""Any DICOMweb archive (dcm4chee, Orthanc's DICOMweb plugin, vendor VNAs, cloud APIs) through
dicomweb-client: QIDO-RS finds studies with MR images, WADO-RS fetches their series, STOW-RS stores results.

QIDO has no change feed, so a study counts as stable once its number of instances has not changed
for `stable_seconds` between polls; a study that grows after it was processed (a new series, not
our own results) is processed again. The search is paged and, when `lookback_days` is set, limited
to studies dated from the stored watermark (the last successful poll's date) minus that many days.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

from .http_session import PacsError, http_failure
from .jobs import JobStore
from .orthanc_source import is_result_series

STUDY_UID, N_INSTANCES, MODALITY, SERIES_UID, DESCRIPTION = "0020000D", "00201208", "00080060", "0020000E", "0008103E"


def _value(item: dict, tag: str, default=None):
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else default


class DicomWebSource:
    def __init__(
        self,
        url: str,
        session,
        *,
        qido_prefix=None,
        wado_prefix=None,
        stow_prefix=None,
        timeout_seconds: float = 30.0,
        stable_seconds: float = 10.0,
        lookback_days: int | None = 2,
        page_size: int = 100,
    ):
        from dicomweb_client.api import DICOMwebClient

        self.client = DICOMwebClient(
            url, session=session, qido_url_prefix=qido_prefix, wado_url_prefix=wado_prefix, stow_url_prefix=stow_prefix, timeout=timeout_seconds
        )
        self.name = f"DICOMweb server {url.rstrip('/')}"
        self.stable_seconds = stable_seconds
        self.lookback_days = lookback_days
        self.page_size = page_size

    def _call(self, fn, *args, **kwargs):
        import requests

        try:
            return fn(*args, **kwargs)
        except (requests.RequestException, OSError) as exc:
            raise http_failure(exc, self.name, "auth") from None

    def _filters(self, jobs: JobStore) -> dict:
        # ModalitiesInStudy is filtered here, not by the server: archives compute it per study, and
        # some (Orthanc's plugin) then ignore the page offset; StudyDate pages everywhere
        filters = {}
        if self.lookback_days is not None:
            mark = jobs.watermark() or dt.date.today().isoformat()
            start = dt.date.fromisoformat(mark) - dt.timedelta(days=self.lookback_days)
            filters["StudyDate"] = f"{start:%Y%m%d}-"
        return filters

    def _instances(self, study_uid: str) -> int:
        found = self._call(self.client.search_for_studies, search_filters={"StudyInstanceUID": study_uid}, fields=["NumberOfStudyRelatedInstances"])
        return int(_value(found[0], N_INSTANCES, 0) or 0) if found else 0

    def poll(self, jobs: JobStore, model_version: str, now: float | None = None) -> int:
        """Page through the MR studies and queue those whose instance count has settled."""
        now = time.time() if now is None else now
        filters = self._filters(jobs)
        added, offset = 0, 0
        while True:
            page = self._call(
                self.client.search_for_studies, offset=offset, limit=self.page_size, search_filters=filters, fields=["NumberOfStudyRelatedInstances"]
            )
            for study in page:
                uid = _value(study, STUDY_UID)
                if uid:
                    added += jobs.observe(str(uid), int(_value(study, N_INSTANCES, 0) or 0), now, self.stable_seconds, model_version)
            if len(page) < self.page_size:
                break
            offset += len(page)
        jobs.set_watermark(dt.date.today().isoformat())
        return added

    def fetch(self, study: str, folder: Path) -> int:
        n = 0
        for series in self._call(self.client.search_for_series, study, fields=["Modality", "SeriesDescription"]):
            if is_result_series(str(_value(series, MODALITY, "")), str(_value(series, DESCRIPTION, ""))):
                continue
            for ds in self._call(self.client.retrieve_series, study, str(_value(series, SERIES_UID))):
                ds.save_as(folder / f"{n:06d}.dcm", enforce_file_format=True)
                n += 1
        return n

    def store(self, files: list[Path]) -> None:
        import pydicom

        if not files:
            return
        datasets = [pydicom.dcmread(io.BytesIO(f.read_bytes())) for f in files]
        answer = self._call(self.client.store_instances, datasets)
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
            raise PacsError(f"{self.name} refused {len(failed)} of {len(datasets)} result objects (failure reason {', '.join(reasons)}).")

    def after_done(self, jobs: JobStore, study: str) -> None:
        """Remember the instance count with our results in it: only growth beyond it means an update."""
        jobs.mark_seen_done(study, self._instances(study))
