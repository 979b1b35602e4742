"""`mrefibrosis` command line. Its options and output files are a documented contract (docs/cli.md).

Split by audience: `clinical` (inspect, measure, segment, presets, review), `services` (worker,
receiver, batch) and `ml` (synth, manifest, train, tune, evaluate, export-onnx). Each module
registers its own parsers and handlers; this one builds the parser and turns errors into one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings

from .. import __version__
from ..errors import MREFibrosisError, printable
from . import clinical, ml, services

AUDIENCES = (clinical, services, ml)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrefibrosis", description="Liver MR elastography: stiffness (kPa) and fibrosis stage.")
    parser.add_argument("--version", action="version", version=f"MREFibrosis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for audience in AUDIENCES:
        audience.register(sub)
    return parser


def _printable_record(record: logging.LogRecord) -> bool:
    """Log lines carry file names and DICOM text: make each one printable before it is written.
    pydicom's own records (decoder tracebacks, value warnings quoting header text) are dropped here,
    at the handler: pydicom resets its logger's level when it is imported, which is now after this
    set-up (the reading stack is imported on first use)."""
    if record.name.split(".")[0] == "pydicom" and record.levelno < logging.CRITICAL:
        return False
    record.msg = printable(record.getMessage())
    record.args = None
    return True


# Commands that end the process as soon as their output is flushed when run as the program (`run`):
# Python's teardown of the modules numpy, scipy, pydicom and ONNX Runtime bring took about 0.1 s of
# every cold `measure`, `segment` (the Slicer panel's child) and `inspect`, a tenth of each. Their
# files are complete and closed before the handler returns; the services, the review page and
# training keep the ordinary exit and its clean-up.
QUICK_EXIT_COMMANDS = frozenset({"measure", "segment", "inspect"})


def main(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit code (in-process callers and tests)."""
    return _dispatch(_parse(argv))


def run() -> None:
    """The program: the console script, `python -m mrefibrosis` and the Slicer panel's child process."""
    args = _parse(None)
    code = _dispatch(args)
    if args.command in QUICK_EXIT_COMMANDS:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown, after everything written is flushed; a
    model still loading on its thread (an exam search that failed first) is not waited for either."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    logging.shutdown()
    os._exit(code)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    for stream in (sys.stdout, sys.stderr):  # a C locale must not turn a non-ASCII series name into a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    return build_parser().parse_args(argv)


def _dispatch(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_printable_record)
    # pydicom logs decoder tracebacks and value warnings, numpy and pydicom warn about odd values:
    # users get our one-line messages instead (--debug shows everything)
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    if not args.debug:
        warnings.simplefilter("ignore")
    try:
        return args.handler(args)
    except MREFibrosisError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; no output was written.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for users, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(f"error: internal error ({type(exc).__name__}: {printable(exc)[:200]}); rerun with --debug and report it.", file=sys.stderr)
        return 3


if __name__ == "__main__":
    run()
