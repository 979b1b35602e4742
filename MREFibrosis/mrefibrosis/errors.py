"""Typed errors whose message is one line a user can act on.

Every error the engine expects (bad files, unusable series, bad options) derives from
MREFibrosisError, so front ends can print ``str(error)`` and exit without a traceback.
"""

import re

# C0 and C1 control characters and DEL (a file name or DICOM text can carry terminal escapes), and the
# lone surrogates that undecodable bytes of a file name become (they cannot be printed)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: object, keep_spacing: bool = False) -> str:
    """One line that is safe to print on any terminal and in any encoding: controls, escapes and
    undecodable bytes become '?', runs of whitespace one space (unless keep_spacing, for tables)."""
    text = str(text)
    if not keep_spacing:
        text = " ".join(text.split())
    return _UNPRINTABLE.sub("?", text)


class MREFibrosisError(Exception):
    """Base class: the message says what is wrong and what to do about it."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(printable(message))


class DicomReadError(MREFibrosisError):
    """A file could not be read as a DICOM Part 10 file."""


class PixelDataError(MREFibrosisError):
    """A DICOM file's pixel data is missing, inconsistent, too large or undecodable."""


class SeriesError(MREFibrosisError):
    """A series or exam is not usable for measurement (geometry, slices, classification)."""


class UnitError(MREFibrosisError):
    """The stiffness unit of an elastogram cannot be determined."""


class ExamNotFoundError(MREFibrosisError):
    """No MRE exam, or more than one where exactly one is needed."""


class RoiError(MREFibrosisError):
    """An ROI file is unreadable or does not overlap the elastogram."""


class StagingError(MREFibrosisError):
    """A staging preset is unknown or not applicable to the exam."""


class OutputError(MREFibrosisError):
    """Results could not be written."""
