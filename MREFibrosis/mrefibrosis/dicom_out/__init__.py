"""Results as DICOM for the PACS: a binary SEG of the ROI, a TID 1500 SR and an RGB overlay."""
