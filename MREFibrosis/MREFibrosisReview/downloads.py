"""The exported files, downloadable from the page that wrote them.

Why: the reading-room PC that shows the page is often not the server that writes `--out`; the reader
needs the CSV or the SEG in hand. Only the files of a complete result set are offered (the manifest
that Export writes last vouches for them, results/result_set.py), so a download never mixes an old
and a new export; and only to a browser holding the page's cookie or token (access.py).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mrefibrosis.results.result_set import MANIFEST, verify_result_set

from .access import PageAccess

ROUTE = "/export/{name:.+}"


def exported_files(folder: Path) -> list[str]:
    """The names of the complete set in the folder, manifest included; [] when there is none."""
    manifest = verify_result_set(folder)
    return sorted([*manifest["files"], MANIFEST]) if manifest is not None else []


def add_download_route(app: web.Application, access: PageAccess, folder: Path) -> None:
    async def download(request: web.Request):
        if not (access.cookie_admits(request) or access.matches(request.query.get("secret"))):
            raise web.HTTPForbidden(text="open the review page's address first (it carries the access token)")
        name = request.match_info["name"]
        if name not in exported_files(folder):
            raise web.HTTPNotFound(text="no such file in the last complete export")
        return web.FileResponse(folder / name, headers={"Content-Disposition": f'attachment; filename="{Path(name).name}"', "Cache-Control": "no-store"})

    app.router.add_get(ROUTE, download)
