"""The training loop: the seed paper's recipe, resumable, reproducible, best checkpoint by validation Dice.

Every epoch ends with a checkpoint written atomically, so an interrupted run resumes from its last
finished epoch and, because shuffling and augmentation are seeded per epoch, reaches the same
weights as an uninterrupted run on the same hardware.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..errors import MREFibrosisError
from ..model.architectures import build_model
from ..model.inference import dice, roi_from_maps
from ..model.margin_settings import RoiMargins
from ..model.model_file import ModelInfo, Preprocessing, read_model_file, save_model
from ..model.preprocess import Canvas, to_model_size, to_native_size
from ..model.roi_margins import margins_region
from ..model.torch_runtime import autocast, resolve_device
from ..results.staged_files import atomic_write_text
from .augment import render_slice
from .config import TrainConfig
from .loader import EpochParts, epoch_loader, epoch_plan
from .manifest import ManifestRow
from .slices import ExamSlices, load_many, slice_index
from .split import read_split, split_patients, write_split

log = logging.getLogger("mrefibrosis")

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.mrefmodel"
BF16_TOLERANCE = 0.005  # validation Dice a bf16 forward pass may lose before bf16 is not marked validated


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    best_dice: float
    best_epoch: int
    history: list[dict]
    seconds: float
    validated_precisions: tuple[str, ...] = ("fp32",)
    split_counts: dict = field(default_factory=dict)


@dataclass
class Data:
    train: list[ExamSlices]
    val: list[ExamSlices]


def preprocessing_for(config: TrainConfig) -> Preprocessing:
    return Preprocessing(input_size=config.input_size, channels=tuple(config.inputs.split("+")), fit=config.fit)


def outputs_for(config: TrainConfig) -> tuple[str, ...]:
    return tuple(config.outputs.split("+"))


def prepare_data(rows: list[ManifestRow], config: TrainConfig, run_dir: Path, progress=None) -> Data:
    """Split by patient (or reuse the run's saved split) and load the exams."""
    split_file = run_dir / "split.csv"
    if split_file.exists():
        saved = read_split(split_file)
        missing = [r.name for r in rows if str(r.exam_dir) not in saved]
        if missing:
            raise MREFibrosisError(
                f"the run's split.csv does not list {len(missing)} manifest exam(s) (e.g. {missing[0]}); use a new --out for a new manifest."
            )
        subset = {str(r.exam_dir): saved[str(r.exam_dir)] for r in rows}
    else:
        by_patient = split_patients(rows, config.val_fraction, config.seed)
        write_split(split_file, rows, by_patient)
        subset = {str(r.exam_dir): by_patient[r.patient] for r in rows}
    pre = preprocessing_for(config)
    loaded = load_many(rows, pre, progress=progress)
    return Data([e for e in loaded if subset[str(e.row.exam_dir)] == "train"], [e for e in loaded if subset[str(e.row.exam_dir)] == "val"])


def _resolve_precision(config: TrainConfig, device: str) -> str:
    if config.precision != "auto":
        if config.precision == "fp16" and not device.startswith("cuda"):
            raise MREFibrosisError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on a CPU.")
        return config.precision
    return "fp16" if device.startswith("cuda") else "fp32"


@torch.no_grad()
def exam_probability(model, ex: ExamSlices, pre: Preprocessing, device: str, precision: str) -> np.ndarray:
    """The inference pipeline on loaded slices: canonical hatch, resize, forward, back to the native
    grid; (slices, outputs, rows, columns)."""
    canvas = Canvas.for_grid(ex.image.shape[-2:], pre.fit)
    x = torch.from_numpy(canvas.place(np.stack([render_slice(ex, s, pre, None, None) for s in range(ex.n_slices)]))).to(device)
    xs = to_model_size(x, pre.input_size)
    with autocast(device, precision):
        logits = model(xs.contiguous(memory_format=torch.channels_last)).float()
    return canvas.crop(torch.sigmoid(to_native_size(logits, canvas.shape))).cpu().numpy()


@dataclass
class Validation:
    roi_dice: dict[float, float]  # mean exam Dice of the post-processed ROI, per threshold
    liver_dice: float | None  # mean exam Dice of the predicted liver (exams with a liver truth)


def validate_model(
    model, exams: list[ExamSlices], pre: Preprocessing, device: str, precision: str, thresholds: tuple[float, ...] = (0.5,), has_liver: bool = False
) -> Validation:
    """The network runs once per exam whatever the number of thresholds; the ROI is post-processed
    exactly as at inference: inside the predicted liver for liver-aware models, and cut to the
    engine's default reader margins (`RoiMargins`), so the threshold and the best epoch are chosen
    for the ROI the software will draw."""
    model.eval()
    scores: dict[float, list[float]] = {t: [] for t in thresholds}
    livers: list[float] = []
    margins = RoiMargins()
    for ex in exams:
        maps = exam_probability(model, ex, pre, device, precision)
        away = ex.away_from_driver if ex.away_from_driver is not None else np.ones(ex.allowed.shape, bool)
        keep = partial(margins_region, away, spacing_mm=ex.spacing_mm, liver_edge_mm=margins.liver_edge_mm)
        for t in thresholds:
            roi, liver = roi_from_maps(maps, ex.allowed, ex.pixel_area_mm2, t, 1.0, has_liver, keep)
            scores[t].append(dice(roi, ex.target & ex.allowed))
        if has_liver and ex.liver is not None:
            livers.append(dice(liver, ex.liver))
    return Validation({t: (float(np.mean(v)) if v else float("nan")) for t, v in scores.items()}, float(np.mean(livers)) if livers else None)


def validation_dice(
    model, exams: list[ExamSlices], pre: Preprocessing, device: str, precision: str, thresholds: tuple[float, ...] = (0.5,), has_liver: bool = False
) -> dict[float, float]:
    return validate_model(model, exams, pre, device, precision, thresholds, has_liver).roi_dice


def _liver_bce(logits: torch.Tensor, y: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the slices whose liver is known (zero when none is)."""
    per_slice = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=(1, 2))
    return (per_slice * known).sum() / known.sum().clamp(min=1.0)


def init_weights(model, model_file: str | os.PathLike) -> int:
    """Copy the tensors of a model file whose names and shapes match (fine-tuning a shipped model,
    or a wider input layer keeping the rest); returns how many were taken."""
    _, weights, _ = read_model_file(model_file)
    own = model.state_dict()
    matching = {}
    for k, v in weights.items():
        if k not in own:
            continue
        if tuple(v.shape) == tuple(own[k].shape):
            matching[k] = v.to(own[k].dtype)
        elif _wider_input(v.shape, own[k].shape):
            # a first layer with more input channels: the old channels keep their filters, the new
            # ones start at zero, so the network begins exactly where the model file left off
            wide = torch.zeros_like(own[k])
            wide[:, : v.shape[1]] = v.to(own[k].dtype)
            matching[k] = wide
        elif "head" in k and _more_outputs(v.shape, own[k].shape):
            # a head with more output maps (a liver beside the ROI): the new maps start as copies of
            # the first, a close guess since the liver contains the ROI
            more = own[k].clone()
            more[:] = v.to(own[k].dtype)[:1]
            more[: v.shape[0]] = v.to(own[k].dtype)
            matching[k] = more
    model.load_state_dict(matching, strict=False)
    return len(matching)


def _more_outputs(old: tuple, new: tuple) -> bool:
    return len(old) == len(new) >= 1 and old[1:] == new[1:] and old[0] < new[0]


def _wider_input(old: tuple, new: tuple) -> bool:
    return len(old) == 4 and len(new) == 4 and old[0] == new[0] and old[2:] == new[2:] and old[1] < new[1]


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def _manifest_digest(rows: list[ManifestRow]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r.exam_dir.name}|{r.roi_path.name if r.roi_path else ''}|{r.patient}|{r.stage}\n".encode())
    return h.hexdigest()[:16]


def _write_history(path: Path, history: list[dict]) -> None:
    if not history:
        return
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for row in history for k in row))  # rows of a run resumed across versions may differ
    w = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, buf.getvalue())


def train(
    config: TrainConfig,
    rows: list[ManifestRow],
    run_dir: str | os.PathLike,
    resume: bool = False,
    data: Data | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    progress: bool = True,
    model_version: str | None = None,
) -> TrainResult:
    """Train one model; `on_epoch(epoch, val_dice)` may raise to stop (Optuna pruning)."""
    from tqdm import tqdm

    config.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise MREFibrosisError(f"{run_dir} already holds a training run; pass --resume to continue it or choose a new --out.")
    state = None
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if {"lr_schedule": "constant", **state["config"]} != config.identity():  # runs saved before the option had a constant rate
            raise MREFibrosisError(
                "--resume with different settings than the run was started with; use the same options (only --epochs and --device may change)."
            )
    device = resolve_device(config.device)
    precision = _resolve_precision(config, device)
    if data is None:
        data = prepare_data(rows, config, run_dir)
    if not data.train:
        raise MREFibrosisError("no training exams after the split; add exams to the manifest.")
    pre = preprocessing_for(config)
    outputs = outputs_for(config)
    has_liver = "liver" in outputs
    if has_liver and not any(e.liver is not None for e in data.train):
        raise MREFibrosisError("--outputs roi+liver needs a 'liver' column in the manifest (the whole liver per exam).")
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    torch.manual_seed(config.seed)
    model = build_model(config.architecture, len(pre.channels), config.base_channels, len(outputs)).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.pos_weight, device=device))
    history: list[dict] = []
    best_dice, best_epoch, start_epoch, seconds = -1.0, 0, 1, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best_dice, best_epoch, seconds = state["history"], state["best_dice"], state["best_epoch"], state["seconds"]
        start_epoch = state["epoch"] + 1
        log.info("resuming %s after epoch %d (best validation Dice %.4f at epoch %d)", run_dir.name, state["epoch"], best_dice, best_epoch)
    elif config.init_from:
        taken = init_weights(model, config.init_from)
        log.info("started from %s: %d of %d tensors taken", Path(config.init_from).name, taken, len(model.state_dict()))

    items = slice_index(data.train)
    micro = config.micro_batch or (config.batch_size if device.startswith("cuda") else min(8, config.batch_size))
    micro = min(micro, config.batch_size)
    n_batches = max(1, len(items) // config.batch_size) if len(items) >= config.batch_size else 1
    if config.max_steps_per_epoch:
        n_batches = min(n_batches, config.max_steps_per_epoch)
    model_path = run_dir / MODEL_FILE
    info_training = {
        "config": config.to_dict(),
        "train_exams": len(data.train),
        "val_exams": len(data.val),
        "train_slices": len(items),
        "manifest_digest": _manifest_digest(rows),
        "device": device,
        "precision": precision,
        "hardware": _hardware(device),
        "torch": str(torch.__version__),
    }

    for epoch in range(start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        gen = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        order = torch.randperm(len(items), generator=gen).tolist()
        while len(order) < n_batches * config.batch_size:  # tiny data sets: repeat the permutation
            order += torch.randperm(len(items), generator=gen).tolist()
        aug = config.augmentation if config.augment else None
        plan = epoch_plan(order, items, n_batches, config.batch_size, micro)
        parts = epoch_loader(EpochParts(data.train, plan, pre, aug, config.seed, epoch, outputs), config.workers)
        losses = []
        total = 0.0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False, dynamic_ncols=True)
        optimizer.zero_grad(set_to_none=True)
        for x, y, known, i in parts:
            part = plan[int(i)]
            x, y, known = x.to(device).contiguous(memory_format=torch.channels_last), y.to(device), known.to(device)
            with autocast(device, precision):
                logits = model(x).float()
            loss = loss_fn(logits[:, :1], y[:, :1])
            if has_liver:
                loss = loss + config.liver_weight * _liver_bce(logits[:, 1], y[:, 1], known[:, 1])
            scaler.scale(loss * part.weight).backward()
            total += float(loss.detach()) * part.weight
            if not part.last:
                continue
            if not np.isfinite(total):
                raise MREFibrosisError(f"training diverged at epoch {epoch} (loss {total}); lower --lr or use --precision fp32.")
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            losses.append(total)
            total = 0.0
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", best_dice=f"{max(best_dice, 0):.3f}")
            b = part.batch
            if not progress and n_batches >= 8 and (b + 1) % (n_batches // 4) == 0 and b + 1 < n_batches:
                log.info("epoch %d: %d/%d steps, loss %.4f", epoch, b + 1, n_batches, np.mean(losses[-10:]))
        bar.close()
        checked = validate_model(model, data.val, pre, device, precision, has_liver=has_liver)
        val = checked.roi_dice[0.5]
        seconds += time.perf_counter() - t0
        improved = val > best_dice
        if improved:
            best_dice, best_epoch = val, epoch
            metrics = {"val_dice": round(val, 4)}
            if checked.liver_dice is not None:
                metrics["val_liver_dice"] = round(checked.liver_dice, 4)
            info = ModelInfo(
                architecture=config.architecture,
                preprocessing=pre,
                base_channels=config.base_channels,
                training={**info_training, "best_epoch": epoch, "epochs_run": epoch, "seconds": round(seconds, 1)},
                metrics=metrics,
                model_version=model_version or f"{config.architecture}-{run_dir.name}-e{epoch}",
                outputs=outputs,
            )
            save_model(model_path, model, info)
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(float(np.mean(losses)), 6),
                "val_dice": round(val, 5),
                "val_liver_dice": "" if checked.liver_dice is None else round(checked.liver_dice, 5),
                "lr": round(config.lr_at(epoch), 8),
                "best": int(improved),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        _write_history(run_dir / "history.csv", history)
        _save_checkpoint(
            ckpt_path,
            {
                "config": config.identity(),
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "best_dice": best_dice,
                "best_epoch": best_epoch,
                "seconds": seconds,
            },
        )
        log.info(
            "epoch %d/%d: loss %.4f, validation Dice %.4f%s%s (%.0f s)",
            epoch,
            config.epochs,
            history[-1]["train_loss"],
            val,
            "" if checked.liver_dice is None else f", liver Dice {checked.liver_dice:.4f}",
            " (best)" if improved else "",
            history[-1]["seconds"],
        )
        if on_epoch is not None:
            on_epoch(epoch, val)

    validated = finalize_model(model_path, data.val, device) if model_path.exists() else ("fp32",)
    return TrainResult(run_dir, model_path, best_dice, best_epoch, history, seconds, validated, {"train": len(data.train), "val": len(data.val)})


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def finalize_model(model_path: Path, val: list[ExamSlices], device: str) -> tuple[str, ...]:
    """Picks the probability threshold with the best validation Dice (a weighted loss shifts it away
    from 0.5), then marks bf16 inference validated only if it loses < BF16_TOLERANCE Dice."""
    info, state, _ = read_model_file(model_path)
    model = build_model(info.architecture, len(info.preprocessing.channels), info.base_channels, len(info.outputs))
    model.load_state_dict(state)
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    pre = info.preprocessing
    scores = validation_dice(model, val, pre, device, "fp32", THRESHOLDS, info.has_liver)
    best_t = max(scores, key=lambda t: (scores[t], -abs(t - 0.5)))
    fp32 = scores[best_t]
    bf16 = validation_dice(model, val, pre, device, "bf16", (best_t,), info.has_liver)[best_t]
    validated = ("fp32", "bf16") if abs(fp32 - bf16) <= BF16_TOLERANCE else ("fp32",)
    info.threshold = best_t
    info.validated_precisions = validated
    info.metrics.update(
        {
            "val_dice_by_threshold": {str(t): round(v, 4) for t, v in scores.items()},
            "threshold": best_t,
            "val_dice_fp32_file": round(fp32, 4),
            "val_dice_bf16_file": round(bf16, 4),
        }
    )
    save_model(model_path, model.cpu(), info)
    log.info(
        "model file %s: threshold %.1f, validation Dice fp32 %.4f, bf16 %.4f -> validated precisions %s",
        model_path.name,
        best_t,
        fp32,
        bf16,
        ", ".join(validated),
    )
    return validated
