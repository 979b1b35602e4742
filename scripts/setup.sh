#!/usr/bin/env bash
# Set up everything MREFibrosis needs on a fresh Debian/Ubuntu machine: a virtual environment in
# .venv with the pinned torch build first, then the engine with its model and test extras, and the
# DICOM validators (dicom3tools, dcmtk) when apt is available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# torch first, pinned: PyPI's torchvision does not import beside the CPU-only torch 2.13 wheel.
if ! "$VPY" -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')" 2>/dev/null; then
  "$VPY" -m pip install -q torch==2.14.1 torchvision==0.29.1
fi
"$VPY" -m pip install -q -e ".[measure,model,onnx,export,dicom,nifti,pacs,batch,train,review,test]" -r MREFibrosis/Resources/requirements.txt \
  -r MREFibrosis/Resources/requirements-model.txt -r MREFibrosis/Resources/requirements-onnx.txt onnx==1.23.1 \
  -c scripts/constraints-ci.txt

# Debian packages: DICOM validators and tools, and Orthanc for the PACS tests (its own daemon is
# kept from starting: tests start Orthanc with their own config on loopback).
need_apt=()
command -v dciodvfy >/dev/null 2>&1 || need_apt+=(dicom3tools)
command -v storescu >/dev/null 2>&1 || need_apt+=(dcmtk)
command -v Orthanc >/dev/null 2>&1 || need_apt+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the review page's browser test (Playwright drives it; no browser download)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
    fi
    apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
    if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    # a packaged Orthanc daemon must not hold the default ports during tests
    command -v service >/dev/null 2>&1 && service orthanc stop >/dev/null 2>&1 || true
  else
    echo "note: install ${need_apt[*]} (Debian packages) for the DICOM validator and PACS tests" >&2
  fi
fi
