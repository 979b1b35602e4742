"""`mrefibrosis review`: the command line's hand-over to the review page.

Registered as the `review` entry point of the `mrefibrosis.front_ends` group (pyproject.toml), so
the engine's command line reaches this front end without importing it: the engine stays below every
front end. Receives the parsed options and the engine's own `SegmenterSettings`, unchanged.
"""

from __future__ import annotations

import importlib.util
import logging

from mrefibrosis.errors import MREFibrosisError
from mrefibrosis.model.segmenter_settings import SegmenterSettings


def run(args, settings: SegmenterSettings) -> int:
    if importlib.util.find_spec("trame_slicer") is None or importlib.util.find_spec("slicer") is None:
        raise MREFibrosisError("the review page is not installed: pip install 'mrefibrosis[review]' (trame-slicer and slicer-core), then run this again.")
    from .launch import make_request, read_token_file
    from .serve import serve

    for name in ("trame", "trame_server", "trame_client", "trame_slicer", "wslink", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)  # their INFO lines are protocol chatter
    token = read_token_file(args.token_file) if args.token_file else args.token
    request = make_request(args.study, host=args.host, port=args.port, token=token, out_dir=args.out, roi_file=args.roi)
    return serve(request, settings, use_stored=not args.new_roi, read=args.read_options, preset=args.preset, reader=args.reader)
