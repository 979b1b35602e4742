"""Training settings; the defaults are the seed paper's recipe."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import MREFibrosisError
from ..model.architecture_names import ARCHITECTURES, UNET_RESNEXT50
from ..model.model_file import SUPPORTED_FITS
from .augment_config import AugmentConfig

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TRAIN_INPUTS = ("elastogram", "elastogram+magnitude")
TRAIN_OUTPUTS = ("roi", "roi+liver")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    architecture: str = UNET_RESNEXT50
    base_channels: int = 64  # plain U-Net only
    input_size: int = 512
    fit: str = "stretch"  # non-square grids: each axis resized on its own (the paper; the shipped model), or "pad" to a centred square
    epochs: int = 32
    lr: float = 0.005
    lr_schedule: str = "constant"  # the paper's constant rate, or "cosine" (annealed over --epochs; for fine-tuning)
    momentum: float = 0.982
    weight_decay: float = 4.457e-6
    batch_size: int = 32
    pos_weight: float = 1.0  # BCE weight of ROI pixels; >1 counters the ~1 % ROI share of an MRE slice (paper: 1)
    micro_batch: int = 0  # 0: the whole batch on a GPU, 8 on a CPU; gradients accumulate up to batch_size
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: fp16 mixed precision on CUDA, fp32 on CPU
    augment: bool = True
    max_steps_per_epoch: int = 0  # 0: every slice once per epoch (set for smoke tests and tuning)
    inputs: str = "elastogram"  # or "elastogram+magnitude" (anatomy as a second channel)
    init_from: str = ""  # a model file whose weights start the run where names and shapes match
    outputs: str = "roi"  # or "roi+liver": a second output map trained on the manifest's liver column
    liver_weight: float = 1.0  # weight of the liver's BCE beside the ROI's
    workers: int = 1  # processes building batches ahead of the step (0: on the main process); results do not depend on it
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise MREFibrosisError(f"--architecture must be one of {', '.join(ARCHITECTURES)}.")
        if self.input_size < 32 or self.input_size % 32:
            raise MREFibrosisError("--input-size must be a multiple of 32 (e.g. 256 or 512).")
        if self.fit not in SUPPORTED_FITS:
            raise MREFibrosisError(f"--fit must be one of {', '.join(SUPPORTED_FITS)}.")
        if self.epochs < 1 or self.batch_size < 1 or self.micro_batch < 0:
            raise MREFibrosisError("--epochs and --batch-size must be at least 1.")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0):
            raise MREFibrosisError("need --lr > 0, 0 <= --momentum < 1 and --weight-decay >= 0.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise MREFibrosisError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}.")
        if not self.pos_weight > 0:
            raise MREFibrosisError("--pos-weight must be positive (1 is plain BCE).")
        if self.inputs not in TRAIN_INPUTS:
            raise MREFibrosisError(f"--inputs must be one of {', '.join(TRAIN_INPUTS)}.")
        if self.outputs not in TRAIN_OUTPUTS:
            raise MREFibrosisError(f"--outputs must be one of {', '.join(TRAIN_OUTPUTS)}.")
        if self.workers < 0 or not self.liver_weight >= 0:
            raise MREFibrosisError("--workers and --liver-weight must not be negative.")
        if self.precision not in TRAIN_PRECISIONS:
            raise MREFibrosisError(f"--precision must be one of {', '.join(TRAIN_PRECISIONS)}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> TrainConfig:
        d = dict(d)
        aug = d.pop("augmentation", {}) or {}
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        return TrainConfig(**{k: v for k, v in d.items() if k in TrainConfig.__dataclass_fields__}, augmentation=AugmentConfig(**aug))

    def lr_at(self, epoch: int) -> float:
        """Learning rate of an epoch (1-based). It depends on the epoch number only, so a resumed run
        follows the same schedule; with cosine, changing --epochs on resume reshapes what is left."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, self.epochs)))

    # What must not change between a run and its resumption.
    def identity(self) -> dict:
        d = self.to_dict()
        for k in ("device", "epochs", "workers"):
            d.pop(k)
        return d
