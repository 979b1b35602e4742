"""Who may use the review page, and what happens when a browser's connection ends.

Why a cookie: trame's client takes the token from the address (`?secret=`) and then removes it from
the address bar, so F5, Back or a bookmark would come back without it and be locked out while the
edits wait on the server. The first load with the token therefore gets an HttpOnly, SameSite=Strict
cookie holding it, and a websocket whose upgrade request carries that cookie (from this page's own
origin) counts as presenting the token. Another site cannot send it (SameSite), scripts cannot read
it (HttpOnly), and without token or cookie the websocket still answers nothing.

Why connections are watched: a paint or scissors stroke is applied when its button is released. A
connection that drops between press and release leaves the stroke open on the server, where it
would follow the next mouse moves and be saved by the next stroke. `on_close` lets the page discard
it (strokes.py): an edit is applied only as a whole, press to release in one connection.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web
from wslink.websocket import LinkProtocol

COOKIE_PREFIX = "mrefibrosis_review_"


class PageAccess:
    """The page's token, as a query parameter on first load and as a cookie afterwards."""

    def __init__(self, token: str):
        self.token = token
        # one cookie per page (token), so two pages on one computer do not overwrite each other's
        self.cookie_name = COOKIE_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:12]

    def matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.token.encode())

    def cookie_admits(self, request) -> bool:
        """The websocket's upgrade request carries this page's cookie, sent by this page's own origin
        (a browser sends Origin on every websocket; a different one is another site's script)."""
        if not self.matches(request.cookies.get(self.cookie_name)):
            return False
        origin = request.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc.lower() == (request.host or "").lower()

    def middleware(self):
        """aiohttp middleware: a page request that brings the right token gets the cookie."""
        access = self

        @web.middleware
        async def set_cookie(request, handler):
            admitted = access.matches(request.query.get("secret"))
            try:
                response = await handler(request)
            except web.HTTPException as redirect:  # "/" answers by redirecting to index.html
                if admitted:
                    access._give_cookie(redirect)
                raise
            if admitted and isinstance(response, web.StreamResponse) and not response.prepared:
                access._give_cookie(response)
            return response

        return set_cookie

    def _give_cookie(self, response) -> None:
        response.set_cookie(self.cookie_name, self.token, httponly=True, samesite="Strict", path="/")


class ConnectionGuard(LinkProtocol):
    """wslink link protocol: admits a websocket by token or by cookie, and reports every closed
    connection that had been admitted (a dropped network, a reload, a closed tab) to `on_close`.
    A stranger's connection, never admitted, can come and go without touching the page."""

    def __init__(self, access: PageAccess, on_close: Callable[[str], None]):
        super().__init__()
        self.access = access
        self.on_close = on_close
        self._cookie_admitted: dict[str, bool] = {}
        self._admitted: set[str] = set()

    def onConnect(self, request, client_id):  # noqa: N802 (wslink's name)
        self._cookie_admitted[client_id] = self.access.cookie_admits(request)

    def onClose(self, client_id):  # noqa: N802
        self._cookie_admitted.pop(client_id, None)
        if client_id in self._admitted:
            self._admitted.discard(client_id)
            self.on_close(client_id)

    async def validateToken(self, token, client_id):  # noqa: N802
        """wslink asks every link protocol; with one answering, its own comparison is skipped."""
        admitted = self.access.matches(token) or self._cookie_admitted.get(client_id, False)
        if admitted:
            self._admitted.add(client_id)
        return admitted


def install(server, access: PageAccess, on_close: Callable[[str], None]) -> ConnectionGuard:
    """Wire both into a trame server before it starts."""
    guard = ConnectionGuard(access, on_close)
    server.add_protocol_to_configure(lambda root: root.registerLinkProtocol(guard))
    server.controller.on_server_bind.add(lambda wslink_server: wslink_server.app.middlewares.append(access.middleware()))
    return guard
