"""Automatic processing when an MRE exam reaches the PACS (worker on Orthanc REST or DICOMweb, DICOM receiver)."""
