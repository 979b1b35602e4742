#!/usr/bin/env bash
# Slicer 5.12 compatibility run: the engine and the Slicer Lib tests that need no torch, on Python 3.12
# with the package versions Slicer 5.12.3 bundles (SuperBuild/External_python*.cmake) plus the
# module's own first-use requirements (MREFibrosis/Resources/requirements.txt, and requirements-onnx.txt
# for Segment on the CPU), in .venv-slicer512. No torch: Segment there runs on ONNX Runtime alone.
set -euo pipefail
cd "$(dirname "$0")/.."

find_py312() {
  # a pyenv shim may exist and still refuse to run: try each candidate
  for p in ${PYTHON312:-} "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12 python3.12; do
    if "$p" -c 'import sys, venv; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then echo "$p"; return; fi
  done
}
PY312=$(find_py312)
if [ -z "$PY312" ]; then
  echo "error: Python 3.12 not found (set PYTHON312); the Slicer 5.12 compatibility run needs it" >&2
  exit 1
fi

# What Slicer 5.12.3 bundles, and the Slicer libraries of the 5.12 line (slicer-core)
SLICER_512=(numpy==2.4.6 pydicom==3.0.2 highdicom==0.27.0 SimpleITK==2.5.5 pillow==12.2.0 dicomweb-client==0.61.0 slicer-core==5.12.4.0)
VENV=.venv-slicer512
if [ ! -x "$VENV/bin/python" ]; then
  "$PY312" -m venv "$VENV"
fi
VPY=$VENV/bin/python
stamp="$VENV/.mrefibrosis-stamp"
want="$(printf '%s\n' "${SLICER_512[@]}"; cat MREFibrosis/Resources/requirements.txt MREFibrosis/Resources/requirements-onnx.txt scripts/constraints-ci.txt)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VPY" -m pip install -q --disable-pip-version-check "${SLICER_512[@]}" -r MREFibrosis/Resources/requirements.txt -r MREFibrosis/Resources/requirements-onnx.txt -c scripts/constraints-ci.txt pytest 2>&1 | grep -v "^WARNING: Location" || true
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  printf '%s' "$want" > "$stamp"
fi
# the bundled versions must not have been replaced by a resolver upgrade
"$VPY" - <<'PY'
from importlib.metadata import version
want = {"numpy": "2.4.6", "pydicom": "3.0.2", "highdicom": "0.27.0", "SimpleITK": "2.5.5", "pillow": "12.2.0"}
got = {k: version(k) for k in want}
assert got == want, f"Slicer 5.12 versions not in place: {got}"
import importlib.util, sys
assert sys.version_info[:2] == (3, 12), sys.version
assert importlib.util.find_spec("torch") is None, "the compatibility venv must not hold torch"
PY
# tests that need torch skip themselves (tiny_model fixture, importorskip); collected files need no torch
exec "$VPY" -m pytest -q -p no:cacheprovider \
  Testing/Python/test_reader.py Testing/Python/test_bad_input.py Testing/Python/test_measure.py Testing/Python/test_qc.py \
  Testing/Python/test_result_contract.py Testing/Python/test_dicom_results.py Testing/Python/test_roi_io.py Testing/Python/test_hatch.py \
  Testing/Python/test_metrics.py Testing/Python/test_process_runner.py Testing/Python/test_slicer_exam_identity.py Testing/Python/test_slicer_logic.py \
  Testing/Python/test_slicer_module_wiring.py Testing/Python/test_packaging.py Testing/Python/test_cli.py \
  Testing/Python/test_onnx_runtime.py Testing/Python/test_slicer_segment_thread.py Testing/Python/test_review_session.py \
  Testing/Python/test_review_launch.py Testing/Python/test_breath_hold.py Testing/Python/test_real_figures_exam.py \
  Testing/Python/test_siemens_raw_real.py Testing/Python/test_slicer_exam_store.py Testing/Python/test_slicer_job_watch.py \
  Testing/Python/test_slicer_segment_starved.py Testing/Python/test_segmenter_settings.py Testing/Python/test_first_use_requirements.py \
  Testing/Python/test_model_store.py Testing/Python/test_flag_words.py Testing/Python/test_dicom_files.py Testing/Python/test_lazy_header.py "$@"
