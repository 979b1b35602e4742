"""A small Orthanc REST client (standard library only) that turns network trouble into one error type."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from ..errors import MREFibrosisError


class PacsUnavailable(MREFibrosisError):
    """The PACS did not answer (down, restarting, network): the job is retried later."""


class PacsError(MREFibrosisError):
    """The PACS answered with an error for this request."""


class OrthancClient:
    def __init__(self, url: str, username: str | None = None, password: str | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = None
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"

    def _request(self, method: str, path: str, data: bytes | None = None, content_type: str | None = None) -> bytes:
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if self._auth:
            req.add_header("Authorization", self._auth)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise PacsError(f"Orthanc answered {exc.code} to {method} {path}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            raise PacsUnavailable(f"Orthanc at {self.url} is unreachable ({type(exc).__name__}); will retry") from None

    def get_json(self, path: str):
        return json.loads(self._request("GET", path).decode("utf-8"))

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path)

    def upload(self, dicom_bytes: bytes) -> dict:
        return json.loads(self._request("POST", "/instances", dicom_bytes, "application/dicom").decode("utf-8"))

    def changes(self, since: int, limit: int = 100) -> dict:
        return self.get_json(f"/changes?since={int(since)}&limit={int(limit)}")
