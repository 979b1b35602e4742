"""Physics-based synthetic MRE exams with known answers (anatomy, waves, inversion, vendor files)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "simulate_exam": "simulate",
    "SynthExam": "synth_exam",
    "SynthSettings": "synth_exam",
    "generate_cohort": "cohort",
    "write_exam": "export",
    "GE_SETTINGS": "export",
    "SIEMENS_SETTINGS": "export",
    "reader_roi": "reader",
    "figures_of_exam": "realism",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
