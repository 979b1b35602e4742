"""The margins a reader keeps around an ROI, in mm, as plain numbers.

Why a module of its own: both the quality control (measure/qc.py, which flags an ROI that ignores
them) and the automatic ROI (model/margin_settings.py, which keeps them) need the same two widths,
and front ends build their settings from them without importing scipy. Assumed conventions, not
measured on patients (domain doc sections 2 and 6): configurable everywhere they are used.
"""

EDGE_MM = 10.0  # the reader's margin inside the liver edge
# The driver's near field: the simulated reader keeps 35 mm away; this margin is smaller, so the QC
# flags only an ROI that is mostly right under the contact patch.
DRIVER_MM = 25.0
