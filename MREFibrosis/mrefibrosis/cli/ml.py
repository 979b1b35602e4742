"""Commands for ML work: simulated cohorts, manifests, training, tuning, evaluation, ONNX export."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import MREFibrosisError
from ..model.segmenter_settings import SegmenterSettings
from .options import add_unavailable, part_of_this_install, require_part, segmenter, settings_from

log = logging.getLogger("mrefibrosis")


def register(sub) -> None:
    p = sub.add_parser("synth", help="write physics-simulated MRE exams with ground truth (example and training data)")
    p.add_argument("out", metavar="OUT", help="folder for exam_NNNNN/ (dicom/, roi.seg.nrrd, truth.json) and cohort.csv")
    p.add_argument("--n", type=int, default=1, help="number of exams (default 1)")
    p.add_argument("--vendor", choices=["ge", "siemens", "both"], default="both", help="vendor style (default both, alternating)")
    p.add_argument("--seed", type=int, default=0, help="cohort seed: the same seed gives the same files")
    p.add_argument("--stage-mix", metavar="MIX", help="weights of drawn fibrosis stages, e.g. F0=1,F1=1,F2=1,F3=1,F4=1")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument(
        "--failure",
        metavar="MODE",
        help="technical failure of every exam: none, iron_overload, ascites, breath_hold, driver_off or very_stiff (default: drawn at the cohort rates)",
    )
    p.add_argument("--preview", metavar="PNG", help="also draw a sheet of the first exam into PNG")
    p.set_defaults(handler=cmd_synth)

    p = sub.add_parser("export-onnx", help="write a model's ONNX Runtime graph (weights stay in the model file) and check it against torch")
    p.add_argument("model", metavar="MODEL", help="model file (.mrefmodel); format-1 files are converted to format 2")
    p.add_argument("--out", metavar="DIR", help="folder for the model (format 2), its .onnx graph and SHA256SUMS (default: beside MODEL)")
    p.add_argument("--model-sha256", metavar="HEX", help="SHA-256 of the whole model file as published; refused on mismatch")
    p.set_defaults(handler=cmd_export_onnx)

    p = sub.add_parser("quantize-onnx", help="write a model's int8 ONNX graph (static quantization, calibrated on training exams) beside it")
    p.add_argument("model", metavar="MODEL", help="model file (.mrefmodel) with its fp32 graph beside it ('export-onnx')")
    p.add_argument(
        "--calibration",
        nargs="+",
        required=True,
        metavar="COHORT",
        help="cohort folders (from 'synth') or exam folders the model was trained on; never a held-out cohort",
    )
    p.add_argument("--slices", type=int, default=120, metavar="N", help="calibration slices, spread over the exams (default 120)")
    p.set_defaults(handler=cmd_quantize_onnx)

    p = sub.add_parser("manifest", help="write manifest.csv (exam, roi, reader kPa, stage, sex, age) for a synthetic cohort")
    p.add_argument("cohort", metavar="COHORT", help="folder written by 'mrefibrosis synth'")
    p.add_argument("--out", metavar="CSV", help="default COHORT/manifest.csv")
    p.add_argument("--cohort-name", metavar="NAME", help="value of the 'cohort' column (for the two-cohort table)")
    p.set_defaults(handler=cmd_manifest)

    if not part_of_this_install("training"):
        add_unavailable(sub, "train", "train a segmenter", "training", "train")
        add_unavailable(sub, "tune", "tune the training recipe", "training", "train")
    else:
        _register_training(sub)

    p = sub.add_parser("evaluate", help="the paper's report for a model on a labelled cohort: Dice/IoU/F1, r, ICC, Bland-Altman, staging")
    p.add_argument("manifest", metavar="MANIFEST", help="CSV of the evaluation cohort (exam, roi, manual_kpa, stage, demographics)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, metrics.json, per_exam.csv and PNG plots")
    p.add_argument("--compare-with", metavar="MANIFEST", help="a second cohort (e.g. the training manifest) for the two-cohort table")
    p.add_argument("--without-magnitude", action="store_true", help="drop the magnitude images first (the figures for exams exported without them)")
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset (default seed)")
    p.add_argument("--title", default="", metavar="TEXT", help="heading of report.md")
    SegmenterSettings.add_arguments(p)
    p.set_defaults(handler=cmd_evaluate)


def _register_training(sub) -> None:
    p = sub.add_parser("train", help="train a segmenter on a manifest of annotated exams (the seed paper's recipe by default)")
    p.add_argument("manifest", metavar="MANIFEST", help="CSV with exam,roi[,patient,manual_kpa,stage,...] (docs/training.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: model.mrefmodel, checkpoint.pt, split.csv, history.csv")
    p.add_argument("--resume", action="store_true", help="continue the run in DIR from its last finished epoch")
    _add_train_options(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("tune", help="Optuna search over the paper's lr, momentum and weight-decay ranges (resumable SQLite study)")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder: study.db, best_params.json, trials.csv")
    p.add_argument("--trials", type=int, default=20, help="trials to run in this call (default 20)")
    p.add_argument("--study-name", default="mrefibrosis", metavar="NAME")
    _add_train_options(p)
    p.set_defaults(handler=cmd_tune)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from ..model.model_file import SUPPORTED_FITS
    from ..training.config import TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("recipe (defaults: the seed paper)")
    g.add_argument(
        "--architecture", default=d.architecture, choices=["unet_resnext50_32x4d", "unet_classic"], help="UNet-ResNeXt50-32x4d or the plain U-Net baseline"
    )
    g.add_argument("--input-size", type=int, default=d.input_size, metavar="PX", help=f"network input size, bilinear (default {d.input_size})")
    g.add_argument(
        "--fit",
        default=d.fit,
        choices=SUPPORTED_FITS,
        help=f"non-square exam grids: stretch each axis to the input size (the paper, the shipped model), or pad to a centred square first, keeping the aspect ratio (default {d.fit})",
    )
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    g.add_argument("--lr", type=float, default=d.lr, help=f"SGD learning rate (default {d.lr})")
    g.add_argument(
        "--lr-schedule",
        default=d.lr_schedule,
        choices=["constant", "cosine"],
        help="constant (the paper) or cosine: annealed from --lr towards 0 over --epochs (fine-tuning)",
    )
    g.add_argument("--momentum", type=float, default=d.momentum, help=f"default {d.momentum}")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"slices per optimizer step (default {d.batch_size})")
    g.add_argument("--pos-weight", type=float, default=d.pos_weight, metavar="W", help="BCE weight of ROI pixels (default 1: plain BCE as in the paper)")
    g.add_argument(
        "--micro-batch", type=int, default=0, metavar="N", help="slices per forward pass; gradients accumulate to --batch-size (default: all on GPU, 8 on CPU)"
    )
    g.add_argument(
        "--val-fraction", type=float, default=d.val_fraction, help=f"share of patients for validation, stratified by stage (default {d.val_fraction})"
    )
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default="auto", metavar="D", help="auto (CUDA when available), cpu or cuda[:N]")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="auto: fp16 mixed precision on CUDA, fp32 on CPU")
    g.add_argument("--base-channels", type=int, default=64, metavar="N", help="plain U-Net width (default 64)")
    g.add_argument("--no-augment", action="store_true", help="train without augmentation")
    g.add_argument(
        "--inputs",
        default="elastogram",
        choices=["elastogram", "elastogram+magnitude"],
        help="network input: the paper's elastogram, or with the magnitude image as a second channel (dropped at random in training)",
    )
    g.add_argument("--init-from", default="", metavar="MODEL", help="start from this model file's weights where names and shapes match")
    g.add_argument(
        "--outputs",
        default=d.outputs,
        choices=["roi", "roi+liver"],
        help="roi, or roi+liver: also map the whole liver (manifest column 'liver') and keep the ROI inside it",
    )
    g.add_argument("--liver-weight", type=float, default=d.liver_weight, metavar="W", help=f"weight of the liver loss (default {d.liver_weight})")
    g.add_argument("--workers", type=int, default=d.workers, metavar="N", help=f"processes building batches ahead of the step (default {d.workers}; 0: none)")
    g.add_argument("--max-steps-per-epoch", type=int, default=0, metavar="N", help="cap optimizer steps per epoch (smoke tests)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (logs one line per epoch)")


def _train_config(args):
    from ..training.config import TrainConfig

    return TrainConfig(
        architecture=args.architecture,
        base_channels=args.base_channels,
        input_size=args.input_size,
        fit=args.fit,
        epochs=args.epochs,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        pos_weight=args.pos_weight,
        micro_batch=args.micro_batch,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        augment=not args.no_augment,
        max_steps_per_epoch=args.max_steps_per_epoch,
        inputs=args.inputs,
        init_from=args.init_from,
        outputs=args.outputs,
        liver_weight=args.liver_weight,
        workers=args.workers,
    )


def cmd_synth(args) -> int:
    from ..synth.cohort import generate_cohort, parse_failure, parse_stage_mix, preview_png

    if args.n < 1 or args.n > 100000:
        raise MREFibrosisError("--n must be between 1 and 100000.")
    mix = parse_stage_mix(args.stage_mix)
    failure = parse_failure(args.failure)
    out = Path(args.out)

    def progress(done, total):
        if done == total or done % max(1, total // 20) == 0:
            log.info("synth: %d/%d exams", done, total)

    truths = generate_cohort(out, args.n, args.seed, args.vendor, mix, args.workers, progress, failure)
    ok = sum(t["status"] == "ok" for t in truths)
    log.info("wrote %d exams to %s (%d ok, %d indeterminate)", len(truths), out, ok, len(truths) - ok)
    if args.preview:
        preview_png(Path(args.preview), args.seed, args.vendor)
        log.info("preview sheet: %s", args.preview)
    return 0


def _exam_folders(paths: list[str]) -> list[Path]:
    """Exam folders below each path (a cohort's exam_*/dicom, else the path itself), the cohorts
    interleaved so that a limit on slices keeps every cohort."""
    per_path: list[list[Path]] = []
    for p in map(Path, paths):
        if not p.exists():
            raise MREFibrosisError(f"{p}: no such folder; give cohort folders from 'mrefibrosis synth' or exam folders.")
        per_path.append(sorted(d / "dicom" for d in p.glob("exam_*") if (d / "dicom").is_dir()) or [p])
    return [folders[k] for k in range(max(map(len, per_path))) for folders in per_path if k < len(folders)]


def cmd_quantize_onnx(args) -> int:
    from ..model.onnx_int8 import quantize_int8

    if args.slices < 8:
        raise MREFibrosisError("--slices must be at least 8.")
    folders = _exam_folders(args.calibration)
    report = quantize_int8(args.model, folders, args.slices, described_as=", ".join(Path(c).name for c in args.calibration))
    log.info(
        "wrote %s (%d kB), calibrated on %d slices of %d exams; int8 vs fp32 on them: ROI Dice %.4f, liver Dice %.4f",
        report.graph_path,
        report.graph_bytes // 1000,
        report.calibration_slices,
        report.calibration_exams,
        report.agreement_roi,
        report.agreement_liver,
    )
    return 0


def cmd_export_onnx(args) -> int:
    from ..model.onnx_graph import export_onnx

    report = export_onnx(args.model, args.out, args.model_sha256)
    log.info(
        "wrote %s (%d kB, %d weights read from the model file) beside %s; ONNX Runtime vs torch fp32: max |logit difference| %.2g",
        report.graph_path,
        report.graph_bytes // 1000,
        report.external_tensors,
        report.model_path.name,
        report.max_abs_logit_difference,
    )
    return 0


def cmd_manifest(args) -> int:
    from ..training.manifest import manifest_from_synthetic

    out = manifest_from_synthetic(args.cohort, args.out, args.cohort_name)
    log.info("manifest: %s", out)
    return 0


def cmd_train(args) -> int:
    from ..training.manifest import read_manifest
    from ..training.trainer import train

    rows = read_manifest(args.manifest)
    result = train(_train_config(args), rows, args.out, resume=args.resume, progress=not args.no_progress)
    log.info(
        "best validation Dice %.4f at epoch %d; model %s (validated precisions: %s); %.0f s",
        result.best_dice,
        result.best_epoch,
        result.model_path,
        ", ".join(result.validated_precisions),
        result.seconds,
    )
    return 0


def cmd_tune(args) -> int:
    from ..training.manifest import read_manifest
    from ..training.tune import tune

    if args.trials < 0:
        raise MREFibrosisError("--trials must be 0 or more.")
    best = tune(_train_config(args), read_manifest(args.manifest), args.out, args.trials, args.study_name, progress=not args.no_progress)
    log.info("best trial %d: validation Dice %.4f with %s -> %s", best["trial"], best["val_dice"], best["params"], Path(args.out) / "best_params.json")
    return 0


def cmd_evaluate(args) -> int:
    require_part("evaluation", "evaluate", "train")
    from ..evaluation.report import evaluate

    summary = evaluate(
        args.manifest,
        args.out,
        segmenter(settings_from(args)),
        preset=args.preset,
        compare_with=args.compare_with,
        title=args.title,
        without_magnitude=args.without_magnitude,
    )
    log.info(
        "evaluated %d exams: Dice %.4f, Pearson r %s -> %s",
        summary["exams"],
        summary["dice_mean"],
        "n/a" if summary["pearson_r"] is None else f"{summary['pearson_r']:.4f}",
        Path(args.out) / "report.md",
    )
    return 0
