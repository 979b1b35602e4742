"""From a folder of DICOM files to an `Exam`: defensive file reading, series classification (GE,
Siemens, by headers and by pixels), units, hatch-derived confidence, geometry, and `inspect`."""
