#!/usr/bin/env bash
# Set up (if needed), make the built-in example exam (a physics-simulated GE-style MRE exam with its
# reader ROI) and measure it: the main job on example data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MRE=.venv/bin/mrefibrosis
rm -rf example
"$MRE" synth example --n 1 --seed 2026 --vendor ge
"$MRE" inspect example/exam_00000/dicom
"$MRE" measure example/exam_00000/dicom --roi example/exam_00000/roi.seg.nrrd --out example/result
echo "--- example/result/measurements.csv"
cat example/result/measurements.csv
echo "--- ground truth (example/exam_00000/truth.json): reader kPa and stage"
.venv/bin/python -c "import json; t=json.load(open('example/exam_00000/truth.json')); print(t['reader_kpa'], t['stages']['seed'], t['status'])"
