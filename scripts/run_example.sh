#!/usr/bin/env bash
# Set up (if needed), make the built-in example exam (a physics-simulated GE-style MRE exam with its
# reader ROI), segment and measure it with the shipped model, and compare with the reader's ROI:
# the main job on example data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MRE=.venv/bin/mrefibrosis
rm -rf example
"$MRE" synth example --n 1 --seed 2026 --vendor ge
"$MRE" inspect example/exam_00000/dicom
# automatic: the shipped UNet-ResNeXt50 (MREFibrosis/mrefibrosis/model/weights/) draws the ROI
"$MRE" measure example/exam_00000/dicom --out example/result
# the same exam over the simulated reader's ROI, for comparison
"$MRE" measure example/exam_00000/dicom --roi example/exam_00000/roi.seg.nrrd --out example/result_reader
echo "--- example/result/measurements.csv (automatic ROI)"
cat example/result/measurements.csv
.venv/bin/python - <<'PY'
import json
auto = json.load(open("example/result/result.json"))
reader = json.load(open("example/result_reader/result.json"))
truth = json.load(open("example/exam_00000/truth.json"))
print(f"automatic ROI: {auto['mean_kpa']:.2f} kPa, stage {auto['stage']} ({auto['status']})" if auto["status"] == "ok" else f"automatic ROI: {auto['status']}")
print(f"reader ROI:    {reader['mean_kpa']:.2f} kPa, stage {reader['stage']}")
print(f"ground truth:  reader {truth['reader_kpa']:.2f} kPa, stage {truth['stages']['seed']}")
PY
