"""`python -m mrefibrosis`: the command line (what the Slicer panel's child process runs)."""

import sys

from .cli import main

sys.exit(main())
