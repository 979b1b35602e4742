"""Training on a handful of synthetic slices: the paper's recipe runs, learns, resumes and reproduces."""

import csv
import json

import numpy as np
import pytest
import torch

from mrefibrosis.cli import main
from mrefibrosis.model.inference import Segmenter
from mrefibrosis.synth.cohort import generate_cohort
from mrefibrosis.training.config import TrainConfig
from mrefibrosis.training.manifest import ManifestError, manifest_from_synthetic, read_manifest
from mrefibrosis.training.split import split_patients
from mrefibrosis.training.trainer import train


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cohort")
    generate_cohort(root, 6, seed=77, vendor="both", stage_mix=None, workers=1)
    return manifest_from_synthetic(root)


def tiny(**kw) -> TrainConfig:
    base = dict(
        architecture="unet_classic", base_channels=8, input_size=64, epochs=3, batch_size=8, micro_batch=4, max_steps_per_epoch=4, val_fraction=0.34, seed=5
    )
    base.update(kw)
    return TrainConfig(**base)


def test_synthetic_manifest_columns(manifest):
    rows = read_manifest(manifest)
    assert len(rows) == 6
    header = manifest.read_text().splitlines()[0].split(",")
    assert header[:6] == ["exam", "roi", "patient", "manual_kpa", "stage", "fibrosis_stage"]
    ok = [r for r in rows if r.roi_path is not None]
    assert ok and all(r.manual_kpa > 0 and r.stage in ("F0-F1", ">=F2") for r in ok)
    assert {r.demographics["sex"] for r in rows} <= {"F", "M"}


def test_loss_falls_and_the_model_file_loads(manifest, tmp_path):
    result = train(tiny(epochs=4, lr=0.005), read_manifest(manifest), tmp_path / "run", progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.9, losses
    seg = Segmenter(result.model_path, device="cpu")
    assert seg.info.architecture == "unet_classic" and seg.info.preprocessing.input_size == 64
    assert seg.info.training["config"]["momentum"] == pytest.approx(0.982)
    assert seg.info.metrics["val_dice"] == pytest.approx(result.best_dice, abs=1e-4)
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert len(history) == 4 and sum(int(h["best"]) for h in history) >= 1


def test_resume_reaches_the_same_weights_and_a_seed_repeats_a_run(manifest, tmp_path):
    rows = read_manifest(manifest)
    full = train(tiny(), rows, tmp_path / "full", progress=False)
    train(tiny(epochs=2), rows, tmp_path / "cut", progress=False)  # "interrupted" after epoch 2
    resumed = train(tiny(), rows, tmp_path / "cut", resume=True, progress=False)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "full" / "split.csv").read_text() == (tmp_path / "cut" / "split.csv").read_text()


def test_run_folder_guard_and_resume_with_other_settings(manifest, tmp_path):
    rows = read_manifest(manifest)
    train(tiny(epochs=1), rows, tmp_path / "r", progress=False)
    with pytest.raises(Exception, match="--resume"):
        train(tiny(epochs=1), rows, tmp_path / "r", progress=False)
    with pytest.raises(Exception, match="different settings"):
        train(tiny(epochs=2, lr=0.1), rows, tmp_path / "r", resume=True, progress=False)


def test_cosine_schedule_sets_each_epochs_rate_and_old_runs_resume(manifest, tmp_path):
    rows = read_manifest(manifest)
    cfg = tiny(epochs=3, lr=0.04, lr_schedule="cosine")
    # cos(0) = 1, cos(pi/3) = 1/2, cos(2 pi/3) = -1/2  ->  factors 1, 3/4, 1/4
    assert [cfg.lr_at(e) for e in (1, 2, 3)] == pytest.approx([0.04, 0.03, 0.01])
    assert tiny(lr=0.04).lr_at(3) == 0.04
    result = train(cfg, rows, tmp_path / "cos", progress=False)
    assert [float(h["lr"]) for h in result.history] == pytest.approx([0.04, 0.03, 0.01])
    state = torch.load(tmp_path / "cos" / "checkpoint.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    # A checkpoint written before the option existed (no lr_schedule) resumes as constant.
    train(tiny(epochs=1), rows, tmp_path / "old", progress=False)
    state = torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=False)
    del state["config"]["lr_schedule"]
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    resumed = train(tiny(epochs=2), rows, tmp_path / "old", resume=True, progress=False)
    assert len(resumed.history) == 2
    with pytest.raises(Exception, match="lr-schedule"):
        tiny(lr_schedule="linear").validate()


def test_resnext_unet_trains_with_gradient_accumulation(manifest, tmp_path):
    cfg = tiny(architecture="unet_resnext50_32x4d", epochs=1, batch_size=4, micro_batch=2, max_steps_per_epoch=1)
    result = train(cfg, read_manifest(manifest), tmp_path / "rx", progress=False)
    info = Segmenter(result.model_path, device="cpu").info
    assert info.architecture == "unet_resnext50_32x4d"
    assert np.isfinite(result.history[0]["train_loss"])


def test_split_is_by_patient_and_stratified(tmp_path):
    rows = []
    lines = ["exam,roi,patient,stage"]
    for i in range(40):
        (tmp_path / f"e{i}").mkdir()
        lines.append(f"e{i},,p{i // 2},{'F0-F1' if i % 4 < 2 else '>=F2'}")  # two exams per patient
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    rows = read_manifest(tmp_path / "m.csv")
    split = split_patients(rows, 0.25, seed=1)
    assert set(split) == {f"p{i}" for i in range(20)}
    for stage in ("F0-F1", ">=F2"):
        patients = {r.patient for r in rows if r.stage == stage}
        assert sum(split[p] == "val" for p in patients) == round(0.25 * len(patients))
    assert split == split_patients(rows, 0.25, seed=1)


@pytest.mark.parametrize(
    "text,match",
    [
        ("exam\nx\n", "lacks column"),
        ("exam,roi\nmissing_folder,\n", "does not exist"),
        ("exam,roi,manual_kpa\nd,,3,5\n", None),
        ("exam,roi,manual_kpa\nd,,abc\n", "not a number"),
        ("exam,roi,manual_kpa\nd,,3500\n", "kPa, not Pa"),
        ("exam,roi\nd,\nd,\n", "listed twice"),
        ("exam,roi\n", "no exam rows"),
    ],
)
def test_manifest_errors_are_one_line(tmp_path, text, match):
    (tmp_path / "d").mkdir()
    (tmp_path / "m.csv").write_text(text)
    if match is None:
        assert len(read_manifest(tmp_path / "m.csv")) == 1
        return
    with pytest.raises(ManifestError, match=match) as info:
        read_manifest(tmp_path / "m.csv")
    assert "\n" not in str(info.value)


def test_cli_train_reports_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("exam,roi\nnowhere,\n")
    assert main(["train", str(tmp_path / "m.csv"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: manifest line 2") and "\n" not in err
    assert main(["train", str(tmp_path / "m.csv"), "--out", str(tmp_path / "run"), "--input-size", "100"]) == 2


def test_cli_train_writes_a_run(manifest, tmp_path):
    out = tmp_path / "cli_run"
    assert (
        main(
            [
                "train",
                str(manifest),
                "--out",
                str(out),
                "--architecture",
                "unet_classic",
                "--base-channels",
                "8",
                "--input-size",
                "64",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--max-steps-per-epoch",
                "2",
                "--no-progress",
                "--val-fraction",
                "0.34",
            ]
        )
        == 0
    )
    assert {p.name for p in out.iterdir()} >= {"model.mrefmodel", "checkpoint.pt", "split.csv", "history.csv", "config.json"}
    assert json.loads((out / "config.json").read_text())["weight_decay"] == pytest.approx(4.457e-6)


def test_init_from_a_model_file_takes_matching_tensors(tmp_path):
    """Fine-tuning starts from a model file: every tensor whose name and shape match is copied; a
    first layer with more input channels keeps the old filters and starts the new channel at zero."""
    from mrefibrosis.model.architectures import build_model
    from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model
    from mrefibrosis.training.trainer import init_weights

    torch.manual_seed(0)
    source = build_model("unet_classic", 1, 8)
    path = tmp_path / "source.mrefmodel"
    save_model(path, source, ModelInfo(architecture="unet_classic", preprocessing=Preprocessing(input_size=64), base_channels=8), half=False)
    same = build_model("unet_classic", 1, 8)
    assert init_weights(same, path) == len(same.state_dict())
    for name, tensor in same.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name]), name
    wider = build_model("unet_classic", 2, 8)
    assert init_weights(wider, path) == len(wider.state_dict())
    for name, tensor in wider.state_dict().items():
        old = source.state_dict()[name]
        if tuple(tensor.shape) == tuple(old.shape):
            assert torch.equal(tensor, old), name
        else:  # the first convolution: the elastogram filters kept, the new channel's at zero
            assert torch.equal(tensor[:, :1], old) and not tensor[:, 1:].any(), name
    # so with a zero second channel the wider network computes what the source did
    x = torch.rand(2, 1, 64, 64)
    source.eval(), wider.eval()
    with torch.no_grad():
        assert torch.allclose(source(x), wider(torch.cat([x, torch.zeros_like(x)], 1)), atol=1e-5)


def test_magnitude_as_second_input_with_and_without_magnitude_images(manifest, tmp_path):
    """--inputs elastogram+magnitude: the model file records both channels, and the segmenter runs
    on exams with magnitude images and on the same exam without them (a zero channel, as trained)."""
    from mrefibrosis.reading.exam_loader import read_exam

    rows = read_manifest(manifest)
    result = train(tiny(epochs=1, inputs="elastogram+magnitude"), rows, tmp_path / "run", progress=False)
    seg = Segmenter(result.model_path, device="cpu")
    assert seg.info.preprocessing.channels == ("elastogram", "magnitude")
    exam = read_exam(rows[0].exam_dir)
    assert exam.magnitude is not None
    with_mag = seg(exam)
    exam.magnitude = None
    without = seg(exam)
    assert with_mag.shape == without.shape == exam.valid.shape
    with pytest.raises(Exception, match="--inputs"):
        TrainConfig(inputs="elastogram+phase").validate()


def test_magnitude_dropout_renders_an_exam_without_magnitude():
    from mrefibrosis.model.model_file import Preprocessing
    from mrefibrosis.training.augment import AugmentConfig, render_slice
    from mrefibrosis.training.slices import ExamSlices

    image = np.random.default_rng(0).random((1, 2, 16, 16)).astype(np.float32)
    ex = ExamSlices(row=None, image=image, low_confidence=None, target=np.zeros((1, 16, 16), bool), allowed=np.ones((1, 16, 16), bool), pixel_area_mm2=1.0)
    pre = Preprocessing(input_size=32, channels=("elastogram", "magnitude"))
    rng = np.random.default_rng(1)
    assert not render_slice(ex, 0, pre, rng, AugmentConfig(magnitude_dropout=1.0))[1].any()
    kept = render_slice(ex, 0, pre, rng, AugmentConfig(magnitude_dropout=0.0))[1]
    assert np.array_equal(kept, image[0, 1])
    assert np.array_equal(render_slice(ex, 0, pre, None, None)[1], image[0, 1])  # validation: never dropped


def test_liver_output_is_trained_and_bounds_the_roi(manifest, tmp_path):
    """--outputs roi+liver: the model file says so, validation reports the liver Dice, and the
    segmenter returns a liver and an ROI that lies inside it."""
    from mrefibrosis.reading.exam_loader import read_exam

    rows = read_manifest(manifest)
    assert all(r.liver_path is not None and r.liver_path.name == "liver.seg.nrrd" for r in rows)
    result = train(tiny(epochs=2, outputs="roi+liver", inputs="elastogram+magnitude"), rows, tmp_path / "run", progress=False)
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert all(0.0 <= float(h["val_liver_dice"]) <= 1.0 for h in history)
    seg = Segmenter(result.model_path, device="cpu", tta=True)
    assert seg.info.outputs == ("roi", "liver") and "val_liver_dice" in seg.info.metrics
    out = seg.segment(read_exam(rows[0].exam_dir))
    assert out.liver is not None and out.liver.shape == out.roi.shape
    assert not (out.roi & ~out.liver).any()
    with pytest.raises(Exception, match="--outputs"):
        TrainConfig(outputs="roi+spleen").validate()


def test_liver_output_needs_a_liver_column(manifest, tmp_path):
    rows = read_manifest(manifest)
    for r in rows:
        r.liver_path = None
    with pytest.raises(Exception, match="liver"):
        train(tiny(epochs=1, outputs="roi+liver"), rows, tmp_path / "run", progress=False)


def test_batches_do_not_depend_on_the_number_of_loader_workers(manifest, tmp_path):
    """Workers only build batches ahead: the same seed gives the same weights with 0 or 2 of them."""
    rows = read_manifest(manifest)
    a = train(tiny(epochs=1, workers=0), rows, tmp_path / "w0", progress=False)
    b = train(tiny(epochs=1, workers=2), rows, tmp_path / "w2", progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    sa = torch.load(tmp_path / "w0" / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "w2" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_init_from_a_roi_model_into_a_roi_and_liver_model(tmp_path):
    """The head grows a liver map that starts as a copy of the ROI map; everything else is copied."""
    from mrefibrosis.model.architectures import build_model
    from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model
    from mrefibrosis.training.trainer import init_weights

    torch.manual_seed(0)
    source = build_model("unet_classic", 1, 8)
    path = tmp_path / "source.mrefmodel"
    save_model(path, source, ModelInfo(architecture="unet_classic", preprocessing=Preprocessing(input_size=64), base_channels=8), half=False)
    two = build_model("unet_classic", 1, 8, classes=2)
    assert init_weights(two, path) == len(two.state_dict())
    x = torch.rand(2, 1, 64, 64)
    source.eval(), two.eval()
    with torch.no_grad():
        a, b = source(x), two(x)
    assert torch.allclose(b[:, :1], a, atol=1e-5) and torch.allclose(b[:, 1:], a, atol=1e-5)


class _LiverFromMagnitude(torch.nn.Module):
    """A known-answer network: ROI probability high everywhere, the liver where the magnitude is bright."""

    def forward(self, x):
        return torch.stack([torch.full_like(x[:, 1], 10.0), 40.0 * x[:, 1] - 20.0], dim=1)


def test_validation_cuts_the_roi_to_the_reader_margins():
    """Validation scores the ROI the software will draw: >= 10 mm inside the predicted liver and
    >= 25 mm from the driver, so the chosen threshold and epoch fit the shipped post-processing."""
    from scipy import ndimage

    from mrefibrosis.model.model_file import Preprocessing
    from mrefibrosis.training.slices import ExamSlices
    from mrefibrosis.training.trainer import validate_model

    shape = (1, 96, 96)
    liver = np.zeros(shape, bool)
    liver[0, 16:80, 16:80] = True  # 64 x 64 px at 1 mm
    image = np.zeros((1, 2) + shape[1:], np.float32)
    image[:, 0] = 0.3
    image[:, 1] = liver
    away = np.ones(shape, bool)
    away[0, :, 60:] = False  # the driver's margin keeps the left part only
    deep = ndimage.distance_transform_edt(liver[0]) >= 10
    want = deep[None] & away
    ex = ExamSlices(None, image, None, want, np.ones(shape, bool), 1.0, liver, away, (1.0, 1.0))
    pre = Preprocessing(input_size=96, channels=("elastogram", "magnitude"))
    checked = validate_model(_LiverFromMagnitude(), [ex], pre, "cpu", "fp32", (0.5,), has_liver=True)
    assert checked.roi_dice[0.5] == pytest.approx(1.0)
    assert checked.liver_dice == pytest.approx(1.0)
    ex.away_from_driver = None  # loaded before the driver margin existed: only the edge margin cuts
    loose = validate_model(_LiverFromMagnitude(), [ex], pre, "cpu", "fp32", (0.5,), has_liver=True).roi_dice[0.5]
    assert loose == pytest.approx(2 * want.sum() / (want.sum() + deep.sum()))
