"""Physics-based synthetic MRE exams with known answers (anatomy, waves, inversion, vendor files)."""
