"""A small U-Net quickly trained on a few synthetic exams: enough for masks that mean something."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mrefibrosis.model.architectures import UNET_CLASSIC, build_model
from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model
from mrefibrosis.model.preprocess import canonical_input, to_model_size
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth.cohort import generate_cohort


def train_tiny_model(root: Path, n_exams: int = 6, steps: int = 120, size: int = 128, seed: int = 0) -> tuple[Path, list[Path]]:
    torch.manual_seed(seed)
    generate_cohort(root / "cohort", n_exams, seed=seed + 40, vendor="both", stage_mix=None, workers=1)
    pre = Preprocessing(input_size=size)
    xs, ys = [], []
    exams = sorted((root / "cohort").glob("exam_*"))
    for d in exams:
        exam = read_exam(d / "dicom")
        ok = json.loads((d / "truth.json").read_text())["status"] == "ok"
        roi = read_roi(d / "roi.seg.nrrd", exam.geometry) if ok else np.zeros(exam.valid.shape, bool)
        x = torch.from_numpy(canonical_input(exam, pre))
        y = torch.from_numpy(roi[:, None].astype(np.float32))
        xs.append(to_model_size(x, size))
        ys.append((to_model_size(y, size) >= 0.5).float())
    x, y = torch.cat(xs), torch.cat(ys)
    model = build_model(UNET_CLASSIC, 1, base_channels=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))
    model.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (8,), generator=g)
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    info = ModelInfo(
        architecture=UNET_CLASSIC,
        preprocessing=pre,
        base_channels=8,
        validated_precisions=("fp32", "bf16"),
        training={"note": "test fixture", "steps": steps},
        model_version="test-tiny",
    )
    path = root / "tiny.mrefmodel"
    save_model(path, model.eval(), info)
    return path, exams
