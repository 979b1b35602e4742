"""Start the review page for one checked request and serve it until interrupted.

The order matters: the exam is read and given its ROI before anything listens (a bad study fails
with one line and no server), the exam's lock is taken before the port is opened, and the access
token reaches trame through a private file, never the command line that other users can list.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.reading.exam_loader import ReadOptions
from MREFibrosisLib.exam_identity import ATTR
from MREFibrosisLib.standalone import bind_scene

from .access import PageAccess, install
from .downloads import add_download_route
from .launch import ExamLock, ReviewError, ReviewRequest
from .session import ReviewSession

log = logging.getLogger("mrefibrosis.review")


def _token_file(token: str) -> Path:
    fd, path = tempfile.mkstemp(prefix="mrefibrosis-review-", suffix=".key")  # created 0600
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return Path(path)


def _quiet_vtk(quiet: bool) -> None:
    """VTK's start-up warnings (deprecations, colour-coded) are not for the person starting a page:
    with -q none of VTK's text is shown, otherwise only its errors."""
    import vtk

    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF if quiet else vtk.vtkLogger.VERBOSITY_ERROR)
    if quiet:
        vtk.vtkObject.GlobalWarningDisplayOff()


def _check_started(server, request: ReviewRequest) -> str | None:
    """Why the server that started is not the one asked for (token, address), or None. trame takes
    its options from sys.argv or $TRAME_ARGS, so this is checked on what it actually configured."""
    from trame_server.protocol import CoreServer

    if CoreServer.authentication_token != request.token:
        return "the page's access token did not reach the server (is $TRAME_ARGS set?); nothing was served."
    host = getattr(server.server_options, "host", request.host)
    if host != request.host:
        return f"the server would listen on {host}, not {request.host} (is $TRAME_ARGS set?); nothing was served."
    return None


def serve(
    request: ReviewRequest,
    settings: SegmenterSettings = SegmenterSettings(),
    use_stored: bool = True,
    read: ReadOptions = ReadOptions(),
    preset: str = "seed",
    reader: str | None = None,
) -> int:
    if not os.environ.get("DISPLAY"):  # a server without a screen renders offscreen with EGL (Mesa), not X11
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    os.environ["WSLINK_READY_MSG"] = ""  # our one line says where the page is
    os.environ.pop("TRAME_ARGS", None)  # this command's options are the page's: none from the environment
    _quiet_vtk(logging.getLogger().getEffectiveLevel() > logging.INFO)
    from trame.app import get_server
    from trame_slicer.core import SlicerApp

    from .page import ReviewPage

    app = SlicerApp()
    bind_scene(app.scene, app.volumes_logic, app.segmentations_logic)
    session = ReviewSession(app.scene, preset=preset)
    origin = session.open(request.study, request.roi_file, settings=settings, use_stored=use_stored, read=read)
    key = session.nodes.stiffness.GetAttribute(ATTR + "ExamKey") or "exam"
    with ExamLock(key) as lock:
        server = get_server("mrefibrosis-review", client_type="vue3")
        page = ReviewPage(server, app, session, request.out_dir / key, title=f"MREFibrosis review: exam {key[:8]}", reader=reader)
        access = PageAccess(request.token)
        install(server, access, page.on_connection_closed)  # reload-safe access, whole strokes
        server.controller.on_server_bind.add(lambda wslink_server: add_download_route(wslink_server.app, access, page.out_dir))
        key_file = _token_file(request.token)

        def ready(**_):
            key_file.unlink(missing_ok=True)  # read by now
            problem = _check_started(server, request)
            if problem is not None:
                print(f"error: {problem}", file=sys.stderr, flush=True)
                os._exit(2)  # before any browser could connect; nothing was written
            lock.publish_address(request.url(server.port, with_token=False))
            print(f"review page for exam {key[:8]} ({origin.detail}): {request.url(server.port)}", flush=True)

        server.controller.on_server_ready.add(ready)
        server.cli.set_defaults(authKeyFile=str(key_file))  # also where trame ignores sys.argv (e.g. under pytest)
        argv = sys.argv
        sys.argv = [argv[0], "--authKeyFile", str(key_file)]  # trame reads its options from sys.argv
        try:
            server.start(host=request.host, port=request.port, open_browser=False, timeout=0, show_connection_info=False, disable_logging=True)
        except OSError as exc:  # the port was taken between the check and the start
            raise ReviewError(f"cannot listen on {request.host}:{request.port} ({exc.strerror or exc}): pass --port with a free port, or 0 for any.") from None
        finally:
            sys.argv = argv
            key_file.unlink(missing_ok=True)
    return 0
