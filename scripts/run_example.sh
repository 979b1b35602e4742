#!/usr/bin/env bash
# Set up (if needed), make the built-in example exam (a physics-simulated GE-style MRE exam with its
# reader ROI), segment and measure it with the shipped model, and compare with the reader's ROI:
# the main job on example data. It needs only the engine and ONNX Runtime: a lean environment of its
# own, .venv-main (about 400 MB; the test command's .venv holds everything: torch, Ray, trame, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! .venv-main/bin/python -c "import mrefibrosis, onnxruntime, highdicom" 2>/dev/null; then
  rm -rf .venv-main
  "$PY" -m venv .venv-main
  .venv-main/bin/python -m pip install -q -e ".[measure]" -c scripts/constraints-ci.txt
fi
MRE=.venv-main/bin/mrefibrosis
rm -rf example
"$MRE" synth example --n 1 --seed 2026 --vendor ge
"$MRE" inspect example/exam_00000/dicom
# automatic: the shipped UNet-ResNeXt50 (MREFibrosis/mrefibrosis/model/weights/) draws the ROI
"$MRE" measure example/exam_00000/dicom --out example/result
# the same exam over the simulated reader's ROI, for comparison
"$MRE" measure example/exam_00000/dicom --roi example/exam_00000/roi.seg.nrrd --out example/result_reader
echo "--- example/result/measurements.csv (automatic ROI)"
cat example/result/measurements.csv
.venv-main/bin/python - <<'PY'
import json
auto = json.load(open("example/result/result.json"))
reader = json.load(open("example/result_reader/result.json"))
truth = json.load(open("example/exam_00000/truth.json"))
print(f"automatic ROI: {auto['mean_kpa']:.2f} kPa, stage {auto['stage']} ({auto['status']})" if auto["status"] == "ok" else f"automatic ROI: {auto['status']}")
print(f"reader ROI:    {reader['mean_kpa']:.2f} kPa, stage {reader['stage']}")
print(f"ground truth:  reader {truth['reader_kpa']:.2f} kPa, stage {truth['stages']['seed']}")
PY
