"""What leaves the engine: the result contract every front end renders, ROI files in and out,
all-or-nothing output folders, and DICOM SEG + SR + overlay."""
