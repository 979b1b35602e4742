"""Orthanc through its REST API: the change feed says which studies became stable."""

from __future__ import annotations

from pathlib import Path

from .jobs import JobStore
from .orthanc_client import OrthancClient

RESULT_MODALITIES = ("SEG", "SR", "PR", "KO")


def is_result_series(modality: str, description: str) -> bool:
    """Results (ours from an earlier run, or other tools'), not images to measure."""
    return modality in RESULT_MODALITIES or str(description).endswith("(MREFibrosis)")


class OrthancRestSource:
    def __init__(self, url: str, session):
        self.client = OrthancClient(url, session)
        self.name = f"Orthanc REST {self.client.url}"

    def poll(self, jobs: JobStore, model_version: str, now: float | None = None) -> int:
        """Queue the studies that became stable since the last poll; returns how many were new."""
        added = 0
        while True:
            since = jobs.cursor()
            answer = self.client.changes(since)
            stable = [c["ID"] for c in answer.get("Changes", []) if c.get("ChangeType") == "StableStudy"]
            added += jobs.enqueue(stable, model_version, int(answer.get("Last", since)))
            if answer.get("Done", True):
                return added

    def fetch(self, study: str, folder: Path) -> int:
        n = 0
        for series in self.client.get_json(f"/studies/{study}/series"):
            tags = series.get("MainDicomTags", {})
            if is_result_series(tags.get("Modality", ""), tags.get("SeriesDescription", "")):
                continue
            for instance_id in series.get("Instances", []):
                (folder / f"{n:06d}.dcm").write_bytes(self.client.get_bytes(f"/instances/{instance_id}/file"))
                n += 1
        return n

    def store(self, files: list[Path]) -> None:
        for f in files:
            self.client.upload(f.read_bytes())

    def after_done(self, jobs: JobStore, study: str) -> None:
        """Nothing to record: Orthanc's feed reports an updated study as a new change."""
