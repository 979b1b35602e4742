"""MREFibrosis engine: liver MR elastography exams in, stiffness (kPa) and fibrosis stage out.

The engine imports neither Slicer nor Qt, so the same code serves the Slicer module, the command
line, the PACS worker and batch jobs.
"""

__version__ = "0.1.0"
