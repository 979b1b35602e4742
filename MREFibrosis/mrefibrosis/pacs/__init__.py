"""Automatic processing when an MRE exam reaches the PACS (Orthanc worker)."""
