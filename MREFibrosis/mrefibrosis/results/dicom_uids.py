"""Deterministic DICOM UIDs: the same inputs give the same UIDs, so re-running an exam replaces its
results in a PACS instead of adding copies, and the simulator's same seed gives the same files."""

from __future__ import annotations

from pydicom.uid import generate_uid

UID_PREFIX = "1.2.826.0.1.3680043.10.1447."  # pydicom-style prefix for derived UIDs


def det_uid(*parts: object) -> str:
    """A UID that is the same for the same parts."""
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts])
