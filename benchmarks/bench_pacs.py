"""Time from the last instance arriving at the PACS to SEG, SR and overlay stored, for a 4-slice exam,
through Orthanc's REST change feed and through DICOMweb (QIDO/WADO/STOW with basic auth).

Starts a real Orthanc (StableAge 2 s; the DICOMweb path: its plugin, stable after 2 s unchanged) on loopback, pushes a synthetic GE exam with storescu, runs the
worker with a UNet-ResNeXt50-32x4d at 512 x 512 (random weights: the speed does not depend on them)
and prints the breakdown: wait for stability, download, read, segment, measure, encode, store.
Target (issue 7): at most the stability delay plus 5 s.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing" / "Python"))

from orthanc_server import OrthancServer  # noqa: E402

from mrefibrosis.measure.roi_stats import measure_roi  # noqa: E402
from mrefibrosis.model.architectures import UNET_RESNEXT50, build_model  # noqa: E402
from mrefibrosis.model.inference import Segmenter  # noqa: E402
from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model  # noqa: E402
from mrefibrosis.pacs.worker import PacsWorker, WorkerConfig  # noqa: E402
from mrefibrosis.pipeline import process_exam  # noqa: E402
from mrefibrosis.reading.exam_loader import read_exam  # noqa: E402
from mrefibrosis.synth.export import GE_SETTINGS, write_exam  # noqa: E402
from mrefibrosis.synth.simulate import simulate_exam  # noqa: E402

STABLE_AGE = 2


def _worker_run(root: Path, exam: Path, seg, source: str) -> tuple[float, dict]:
    """Push the exam, run the worker in a thread, time until SEG, SR and overlay are in the PACS."""
    import os

    users = {"bench": "bench-secret"} if source == "dicomweb" else None
    os.environ["MREFIBROSIS_BENCH_PASSWORD"] = "bench-secret"
    orthanc = OrthancServer(root, stable_age=STABLE_AGE, dicomweb=source == "dicomweb", users=users).start()
    try:
        common = dict(jobs_db=str(root / "jobs.sqlite"), poll_seconds=0.1)
        if source == "dicomweb":
            cfg = WorkerConfig(
                source="dicomweb",
                dicomweb_url=orthanc.dicomweb_url,
                auth={"type": "basic", "username": "bench", "password_env": "MREFIBROSIS_BENCH_PASSWORD"},
                stable_seconds=STABLE_AGE,
                lookback_days=None,
                **common,
            )
        else:
            cfg = WorkerConfig(orthanc_url=orthanc.url, **common)
        worker = PacsWorker(cfg, segmenter=seg)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
        thread.start()
        orthanc.store(exam)
        arrived = time.perf_counter()
        while True:
            mods = [s["MainDicomTags"].get("Modality") for st in orthanc.get("/studies") for s in orthanc.get(f"/studies/{st}/series")]
            if {"SEG", "SR", "OT"} <= set(mods):
                break
            jobs = worker.jobs.all()
            if jobs and jobs[0].state not in ("pending", "done") or time.perf_counter() - arrived > 120:
                raise SystemExit(f"worker did not store results: {jobs}")
            time.sleep(0.05)
        total = time.perf_counter() - arrived
        stop.set()
        thread.join(10)
        return total, json.loads(worker.jobs.all()[0].detail)
    finally:
        orthanc.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_exam(tmp / "exam", simulate_exam(5, GE_SETTINGS, n_slices=4, failure=None), "ge", "bench-pacs")
        model = tmp / "m.mrefmodel"
        save_model(model, build_model(UNET_RESNEXT50).eval(), ModelInfo(UNET_RESNEXT50, Preprocessing(input_size=512), validated_precisions=("fp32", "bf16")))
        seg = Segmenter(model, device="auto")
        # in-process breakdown of the engine steps on the same exam
        t0 = time.perf_counter()
        exam = read_exam(tmp / "exam" / "dicom")
        t1 = time.perf_counter()
        roi = seg(exam)
        t2 = time.perf_counter()
        measure_roi(exam, roi)
        t3 = time.perf_counter()
        from mrefibrosis.results.dicom_results import build_dicom_results

        result = process_exam(exam, None, segmenter=lambda e: roi)
        t4 = time.perf_counter()
        build_dicom_results(result)
        t5 = time.perf_counter()
        runs = {name: _worker_run(tmp / name, tmp / "exam" / "dicom", seg, name) for name in ("orthanc", "dicomweb")}
    print(f"device {seg.device}, precision {seg.precision}, model UNet-ResNeXt50 512 x 512, 4-slice GE exam")
    for name, (total, detail) in runs.items():
        label = "Orthanc REST change feed" if name == "orthanc" else "DICOMweb QIDO/WADO/STOW (basic auth)"
        print(f"{label}: last instance stored -> SEG+SR+overlay stored: {total:.2f} s (stability {STABLE_AGE} s; target <= {STABLE_AGE + 5} s)")
        print(
            f"  worker: download {detail['download_s']:.2f} s, process {detail['process_s']:.2f} s, store {detail['store_s']:.2f} s; "
            f"wait for stability + polling ~ {total - sum(detail.values()):.2f} s"
        )
    print(f"  engine steps in-process: read {t1 - t0:.2f} s, segment {t2 - t1:.2f} s, measure {t3 - t2:.3f} s, encode SEG/SR/overlay {t5 - t4:.2f} s")


if __name__ == "__main__":
    main()
