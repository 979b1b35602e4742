"""Commands for hospital IT: the PACS worker, the DICOM receiver and the batch scorer."""

from __future__ import annotations

import logging
import signal
import threading

from ..errors import MREFibrosisError
from ..model.segmenter_settings import SegmenterSettings
from .options import require_part, settings_from

log = logging.getLogger("mrefibrosis")


def register(sub) -> None:
    p = sub.add_parser("worker", help="watch a PACS (Orthanc REST or DICOMweb) and store SEG, SR and overlay for each stable MRE study")
    p.add_argument("--config", required=True, metavar="FILE", help="worker JSON config (docs/pacs.md)")
    p.add_argument("--once", action="store_true", help="poll and process once, then exit (for cron or tests)")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("batch", help="score many exams on Ray (local or a cluster); resumable, one table for the run")
    p.add_argument("input", metavar="INPUT", help="folder with one subfolder per exam, or a CSV with a 'path' column")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--address", metavar="ADDR", help="join this Ray cluster (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=2, help="model replicas (default 2)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G")
    p.add_argument("--preset", default="seed")
    SegmenterSettings.add_arguments(p)  # for throughput on a CPU with AVX512-BF16, --runtime torch (bf16): benchmarks/bench_cold_start.py
    p.set_defaults(handler=cmd_batch)

    p = sub.add_parser("receiver", help="DICOM storage SCP: process studies after a quiet period, send results by C-STORE")
    p.add_argument("--config", required=True, metavar="FILE", help="receiver JSON config (docs/pacs.md)")
    p.set_defaults(handler=cmd_receiver)


def _until_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def cmd_worker(args) -> int:
    require_part("pacs", "worker", "pacs")
    from ..pacs.worker import PacsWorker, WorkerConfig

    worker = PacsWorker(WorkerConfig.load(args.config))
    if args.once:
        worker.poll()
        worker.run_due()
        return 0
    try:
        worker.run_forever(_until_sigterm())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_batch(args) -> int:
    require_part("batch", "batch", "batch")
    from ..batch.run import run_batch

    if args.workers < 1:
        raise MREFibrosisError("--workers must be at least 1.")
    summary = run_batch(args.input, args.out, args.address, args.workers, args.gpus_per_worker, settings_from(args), args.preset)
    log.info("batch: %(folders)d folders, %(scored)d scored, %(skipped)d skipped, %(failed)d failed in %(seconds).1f s -> %(csv)s", summary)
    return 0


def cmd_receiver(args) -> int:
    require_part("pacs", "receiver", "pacs")
    from ..pacs.receiver import Receiver, ReceiverConfig

    receiver = Receiver(ReceiverConfig.load(args.config)).start()
    stop = _until_sigterm()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    receiver.stop()
    return 0
