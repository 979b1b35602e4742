"""HTTP sessions for PACS connections (authentication, TLS, timeouts from the worker config) and the
errors every PACS call turns failures into.

Why here: every PACS call (Orthanc REST, DICOMweb through dicomweb-client) goes through one
`requests.Session` built the same way. Secrets are read from an environment variable or a file
named in the config, never from the config itself or the command line, and never logged; TLS
certificates are verified unless a site turns it off explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MREFibrosisError


class PacsConfigError(MREFibrosisError):
    """The connection settings are incomplete or point at a missing secret."""


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


@dataclass(frozen=True)
class AuthSettings:
    """{"type": "basic", "username": "...", "password_env": "VAR" | "password_file": "PATH"} or
    {"type": "bearer", "token_env": "VAR" | "token_file": "PATH"}; {"type": "none"} by default."""

    type: str = "none"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    token_env: str | None = None
    token_file: str | None = None

    @staticmethod
    def from_dict(raw: dict | None, where: str) -> AuthSettings:
        raw = dict(raw or {})
        if "password" in raw or "token" in raw:
            raise PacsConfigError(
                f"{where}: put the secret in an environment variable or a file (password_env/password_file, token_env/token_file), not in the config."
            )
        unknown = set(raw) - set(AuthSettings.__dataclass_fields__)
        if unknown:
            raise PacsConfigError(f"{where}: unknown auth keys {', '.join(sorted(unknown))}; see docs/pacs.md.")
        auth = AuthSettings(**raw)
        if auth.type not in ("none", "basic", "bearer"):
            raise PacsConfigError(f"{where}: auth type '{auth.type}' is not none, basic or bearer.")
        if auth.type == "basic" and not auth.username:
            raise PacsConfigError(f"{where}: basic auth needs a username.")
        return auth


def _secret(env: str | None, file: str | None, what: str, where: str) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise PacsConfigError(f"{where}: the environment variable {env} (the {what}) is not set.")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PacsConfigError(f"{where}: cannot read the {what} file {file} ({exc.strerror or type(exc).__name__}).") from None
    raise PacsConfigError(f"{where}: the {what} is missing; set {what}_env or {what}_file.")


def make_session(auth: AuthSettings, verify_tls: bool = True, ca_bundle: str | None = None, timeout_seconds: float = 30.0, where: str = "auth"):
    """A requests session with the credentials, certificate checks and a default timeout applied."""
    import requests

    class _Session(requests.Session):
        def request(self, *args, **kwargs):  # dicomweb-client passes no timeout: give every call one
            kwargs.setdefault("timeout", timeout_seconds)
            return super().request(*args, **kwargs)

    session = _Session()
    if auth.type == "basic":
        session.auth = (auth.username, _secret(auth.password_env, auth.password_file, "password", where))
    elif auth.type == "bearer":
        session.headers["Authorization"] = f"Bearer {_secret(auth.token_env, auth.token_file, 'token', where)}"
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise PacsConfigError(f"{where}: CA bundle {ca_bundle} not found.")
        session.verify = ca_bundle
    else:
        session.verify = bool(verify_tls)
    return session
