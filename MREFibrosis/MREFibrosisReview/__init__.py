"""The browser review page: the radiologist's loop (see the automatic ROI, correct it, Compute,
Export) served by trame-slicer from the same Lib logic and engine as the Slicer panel and the CLI.

Layers: `launch` checks a request and guards the exam (no trame, no Slicer); `session` sequences
the Lib's calls on one scene (slicer-core, no trame); `page` is the trame wiring only.
"""
