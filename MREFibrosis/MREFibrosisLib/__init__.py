"""Qt-free Slicer logic of MREFibrosis: works on an MRML scene passed in (Slicer or slicer-core)."""

from .logic import ExamNodes, MREFibrosisLogic

__all__ = ["ExamNodes", "MREFibrosisLogic"]
