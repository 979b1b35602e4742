"""Automatic processing when an MRE exam reaches the PACS (worker on Orthanc REST or DICOMweb, DICOM receiver)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "OrthancWorker": "worker",
    "PacsWorker": "worker",
    "WorkerConfig": "worker",
    "Receiver": "receiver",
    "ReceiverConfig": "receiver",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
