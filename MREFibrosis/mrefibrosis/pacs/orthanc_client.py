"""Orthanc's own REST calls (the change feed, study listing, upload) over the worker's `requests`
session; failures become the PACS errors of `http_session`."""

from __future__ import annotations

from .http_session import PacsError, PacsUnavailable, http_failure

__all__ = ["OrthancClient", "PacsError", "PacsUnavailable"]


class OrthancClient:
    def __init__(self, url: str, session):
        self.url = url.rstrip("/")
        self.session = session

    def _request(self, method: str, path: str, data: bytes | None = None, content_type: str | None = None) -> bytes:
        import requests

        headers = {"Content-Type": content_type} if content_type else None
        try:
            resp = self.session.request(method, self.url + path, data=data, headers=headers)
            resp.raise_for_status()
            return resp.content
        except (requests.RequestException, OSError) as exc:
            raise http_failure(exc, f"Orthanc at {self.url}", "auth") from None

    def get_json(self, path: str):
        import json

        return json.loads(self._request("GET", path).decode("utf-8"))

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path)

    def upload(self, dicom_bytes: bytes) -> dict:
        import json

        return json.loads(self._request("POST", "/instances", dicom_bytes, "application/dicom").decode("utf-8"))

    def changes(self, since: int, limit: int = 100) -> dict:
        return self.get_json(f"/changes?since={int(since)}&limit={int(limit)}")
