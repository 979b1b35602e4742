"""Training batches built in worker processes while the network trains on the previous one.

Why: rendering the hatch, resizing and the random affine take about 1 s per 32-slice batch on the
main process, time the CPU's compute threads would otherwise wait for. Each micro-batch draws its
augmentation from its own seed (run seed, epoch, batch, part), so the batches are the same with
any number of workers and a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model.model_file import Preprocessing
from .augment import AugmentConfig, batch_tensors
from .slices import ExamSlices


@dataclass(frozen=True)
class Part:
    batch: int  # optimizer step within the epoch
    items: list[tuple[int, int]]  # (exam, slice)
    weight: float  # share of the batch: gradients of the parts add up to the batch mean
    last: bool  # the optimizer steps after this part


def epoch_plan(order: list[int], items: list[tuple[int, int]], n_batches: int, batch_size: int, micro: int) -> list[Part]:
    plan = []
    for b in range(n_batches):
        batch = [items[i] for i in order[b * batch_size : (b + 1) * batch_size]]
        starts = list(range(0, len(batch), micro))
        for m in starts:
            part = batch[m : m + micro]
            plan.append(Part(b, part, len(part) / len(batch), m == starts[-1]))
    return plan


class EpochParts(torch.utils.data.Dataset):
    """Part i of one epoch as (x, y, known, index) tensors."""

    def __init__(
        self, exams: list[ExamSlices], plan: list[Part], pre: Preprocessing, aug: AugmentConfig | None, seed: int, epoch: int, outputs: tuple[str, ...]
    ):
        self.exams, self.plan, self.pre, self.aug = exams, plan, pre, aug
        self.seed, self.epoch, self.outputs = seed, epoch, outputs

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int):
        part = self.plan[i]
        rng = np.random.default_rng([self.seed, self.epoch, part.batch, i]) if self.aug is not None else None
        x, y, known = batch_tensors(self.exams, part.items, self.pre, rng, self.aug, self.outputs)
        return x, y, known, i


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # a worker renders; the main process's threads compute


def epoch_loader(dataset: EpochParts, workers: int) -> torch.utils.data.DataLoader:
    """In order, `workers` processes ahead of the training step (0: on the main process)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
    )
