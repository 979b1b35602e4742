"""Time from the last instance arriving at Orthanc to SEG, SR and overlay stored, for a 4-slice exam.

Starts a real Orthanc (StableAge 2 s) on loopback, pushes a synthetic GE exam with storescu, runs the
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
from mrefibrosis.pacs.worker import OrthancWorker, WorkerConfig  # noqa: E402
from mrefibrosis.pipeline import process_exam  # noqa: E402
from mrefibrosis.reading.exam_loader import read_exam  # noqa: E402
from mrefibrosis.synth.export import GE_SETTINGS, write_exam  # noqa: E402
from mrefibrosis.synth.simulate import simulate_exam  # noqa: E402

STABLE_AGE = 2


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
        orthanc = OrthancServer(tmp / "orthanc", stable_age=STABLE_AGE).start()
        try:
            worker = OrthancWorker(WorkerConfig(orthanc_url=orthanc.url, jobs_db=str(tmp / "jobs.sqlite"), poll_seconds=0.1), segmenter=seg)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
            thread.start()
            orthanc.store(tmp / "exam" / "dicom")
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
            detail = json.loads(worker.jobs.all()[0].detail)
        finally:
            orthanc.stop()
    print(f"device {seg.device}, precision {seg.precision}, model UNet-ResNeXt50 512 x 512, 4-slice GE exam")
    print(f"last instance stored -> SEG+SR+overlay stored: {total:.2f} s (stability delay {STABLE_AGE} s; target <= {STABLE_AGE + 5} s)")
    print(
        f"  worker: download {detail['download_s']:.2f} s, process {detail['process_s']:.2f} s, store {detail['store_s']:.2f} s; "
        f"wait for stability + polling ~ {total - sum(detail.values()):.2f} s"
    )
    print(f"  engine steps in-process: read {t1 - t0:.2f} s, segment {t2 - t1:.2f} s, measure {t3 - t2:.3f} s, encode SEG/SR/overlay {t5 - t4:.2f} s")


if __name__ == "__main__":
    main()
