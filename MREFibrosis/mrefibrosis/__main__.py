"""`python -m mrefibrosis`: the command line (what the Slicer panel's child process runs)."""

from .cli import run

run()
