"""Orthanc's own REST calls (the change feed, study listing, upload) over a `requests` session, with
network trouble turned into one error type the worker retries on."""

from __future__ import annotations

from ..errors import MREFibrosisError


class PacsUnavailable(MREFibrosisError):
    """The PACS did not answer (down, restarting, network): the job is retried later."""


class PacsError(MREFibrosisError):
    """The PACS answered with an error for this request."""


def http_failure(exc: Exception, server: str, setting: str) -> MREFibrosisError:
    """One typed, one-line error for a failed HTTP call: refused credentials name the setting to
    fix, a server that is away is retried later, anything else names the status."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return PacsError(f"{server} refused the credentials (HTTP {code}); check '{setting}' in the worker config.")
        if code in (502, 503, 504):
            return PacsUnavailable(f"{server} is unavailable (HTTP {code}); will retry")
        return PacsError(f"{server} answered HTTP {code} to {exc.request.method if exc.request else 'a request'}")
    if isinstance(exc, requests.exceptions.SSLError):
        return PacsError(f"{server}: TLS certificate check failed; set 'ca_bundle' in the worker config to your hospital's CA.")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError, OSError)):
        return PacsUnavailable(f"{server} is unreachable ({type(exc).__name__}); will retry")
    return PacsError(f"{server}: {type(exc).__name__}")


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
            raise http_failure(exc, f"Orthanc at {self.url}", "orthanc_username / orthanc_password_env") from None

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
