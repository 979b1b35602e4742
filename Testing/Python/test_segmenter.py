"""The segmenter: architectures, model files, resizing, precision, post-processing and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from model_fixtures import train_tiny_model

from mrefibrosis.model.architectures import UNET_CLASSIC, UNET_RESNEXT50, build_model
from mrefibrosis.model.inference import DeviceError, Segmenter, drop_small_pieces, resolve_device
from mrefibrosis.model.model_file import ModelFileError, ModelInfo, Preprocessing, read_model_file, save_model
from mrefibrosis.model.preprocess import canonical_input, to_model_size, to_native_size
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny"))


def _dice(a, b):
    return 2 * (a & b).sum() / max(1, a.sum() + b.sum())


@pytest.mark.parametrize("arch,base", [(UNET_RESNEXT50, 64), (UNET_CLASSIC, 8)])
def test_architectures_build_offline_and_keep_size(arch, base):
    model = build_model(arch, in_channels=1, base_channels=base).eval()
    with torch.inference_mode():
        y = model(torch.rand(2, 1, 64, 64))
    assert y.shape == (2, 1, 64, 64)


def test_classic_unet_has_four_levels():
    model = build_model(UNET_CLASSIC, base_channels=64)
    assert len(model.down) == 5 and len(model.up) == 4
    assert model.down[-1][0].out_channels == 1024


def test_model_file_round_trip_and_refusals(tmp_path):
    model = build_model(UNET_CLASSIC, base_channels=4).eval()
    info = ModelInfo(UNET_CLASSIC, Preprocessing(input_size=64), base_channels=4, model_version="t1")
    path = tmp_path / "m.mrefmodel"
    digest = save_model(path, model, info)
    info2, state, sha = read_model_file(path)
    assert sha == digest and info2.model_version == "t1" and info2.preprocessing.input_size == 64
    restored = build_model(UNET_CLASSIC, base_channels=4)
    restored.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), restored.eval()(x), atol=2e-2)
    # one flipped byte: refused
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    bad = tmp_path / "bad.mrefmodel"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="SHA-256"):
        read_model_file(bad)
    (tmp_path / "junk.mrefmodel").write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelFileError, match="not an MREFibrosis model"):
        read_model_file(tmp_path / "junk.mrefmodel")
    (tmp_path / "cut.mrefmodel").write_bytes(path.read_bytes()[:500])
    with pytest.raises(ModelFileError):
        read_model_file(tmp_path / "cut.mrefmodel")
    # preprocessing this code does not implement: refused
    other = ModelInfo(UNET_CLASSIC, Preprocessing(kind="colour_elastogram", input_size=64), base_channels=4)
    save_model(tmp_path / "other.mrefmodel", model, other)
    with pytest.raises(ModelFileError, match="preprocessing"):
        read_model_file(tmp_path / "other.mrefmodel")
    # weights of another architecture: refused at load
    wrong = ModelInfo(UNET_RESNEXT50, Preprocessing(input_size=64))
    save_model(tmp_path / "wrong.mrefmodel", model, wrong)
    with pytest.raises(ModelFileError, match="do not fit"):
        Segmenter(tmp_path / "wrong.mrefmodel", device="cpu")


@pytest.mark.parametrize("shape", [(256, 256), (204, 256), (96, 80)])
def test_binary_masks_survive_resize_round_trip_exactly(shape):
    rng = np.random.default_rng(0)
    mask = rng.random((3,) + shape) < 0.3
    x = torch.from_numpy(mask[:, None].astype(np.float32))
    back = to_native_size(to_model_size(x, 512), shape)[:, 0].numpy() >= 0.5
    np.testing.assert_array_equal(back, mask)


def test_canonical_input_hatches_low_confidence(ge_exam):
    exam = read_exam(ge_exam.path)
    pre = Preprocessing()
    x = canonical_input(exam, pre)
    assert x.shape == (exam.n_slices, 1, exam.geometry.rows, exam.geometry.columns)
    assert x.min() >= 0 and x.max() <= 1
    ok = exam.confidence_valid
    np.testing.assert_allclose(x[:, 0][ok], np.clip(exam.stiffness_kpa[ok] / 8.0, 0, 1), rtol=1e-6)
    assert (x[:, 0][~ok & exam.valid] == 1.0).mean() > 0.1  # hatch lines at the display maximum


def test_tiny_model_segments_reader_roi_and_bf16_agrees(tiny):
    path, exams = tiny
    fp32 = Segmenter(path, device="cpu", precision="fp32")
    bf16 = Segmenter(path, device="cpu", precision="bf16")
    dices = []
    for d in exams[:3]:
        exam = read_exam(d / "dicom")
        truth = read_roi(d / "roi.seg.nrrd", exam.geometry)
        a, b = fp32.segment(exam).roi, bf16.segment(exam).roi
        assert _dice(a, b) >= 0.99
        dices.append(_dice(a, truth))
        assert not (a & ~exam.confidence_valid).any() and not (a & ~exam.valid).any()
    assert np.mean(dices) > 0.5, dices


def test_auto_precision_follows_model_file(tiny):
    assert Segmenter(tiny[0], device="cpu").precision == "bf16"  # the fixture lists bf16 as validated


def test_tta_reports_agreement(tiny):
    path, exams = tiny
    s = Segmenter(path, device="cpu", tta=True).segment(read_exam(exams[0] / "dicom"))
    assert s.tta_agreement is not None and 0.0 <= s.tta_agreement <= 1.0


class _Net:
    def __init__(self, f):
        self.f = f

    def logits(self, x, cancelled=None):
        return self.f(x)


def test_tta_pass_moves_back_exactly():
    """A network that commutes with moving the image gives the plain logits back exactly (the lost
    strip comes from the plain pass); one that does not (a mirror) does not."""
    from mrefibrosis.model.inference import TTA_SHIFT_PX, tta_pass

    x = np.random.default_rng(0).random((2, 2, 64, 64)).astype(np.float32)
    assert np.array_equal(tta_pass(_Net(lambda a: a * 3.0), x, x * 3.0), x * 3.0)
    mirrored = tta_pass(_Net(lambda a: a[..., ::-1]), x, x[..., ::-1])
    assert not np.array_equal(mirrored, x[..., ::-1])
    s = TTA_SHIFT_PX
    moved = tta_pass(_Net(lambda a: a), x, np.full_like(x, -1.0), shift=s)
    assert np.array_equal(moved[..., :-s, :-s], x[..., :-s, :-s]) and (moved[..., -s:, :] == -1).all()


def test_small_pieces_are_dropped():
    mask = np.zeros((1, 50, 50), bool)
    mask[0, 5:8, 5:8] = True  # 9 px x 4 mm2 = 0.36 cm2
    mask[0, 20:40, 20:40] = True  # 16 cm2
    out = drop_small_pieces(mask, 4.0, 1.0)
    assert out[0, 30, 30] and not out[0, 6, 6]


def test_cuda_asked_but_absent():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="--device"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "mrefibrosis", *map(str, args)], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_segment_and_measure_without_roi(tmp_path, tiny):
    path, exams = tiny
    code, _, err = run_cli("segment", exams[0] / "dicom", "--out", tmp_path / "seg", "--model", path, "--tta")
    assert code == 0, err
    info = json.loads((tmp_path / "seg" / "segmentation.json").read_text())
    assert info["model"]["sha256"] and info["tta_agreement"] is not None
    assert (tmp_path / "seg" / "roi.seg.nrrd").exists()
    code, _, err = run_cli("measure", exams[0] / "dicom", "--out", tmp_path / "m", "--model", path)
    assert code == 0, err
    result = json.loads((tmp_path / "m" / "result.json").read_text())
    assert result["exam"]["roi_source"] == "automatic segmentation"
    assert result["exam"]["segmentation"]["architecture"] == UNET_CLASSIC
    # the automatic ROI written is the one measured
    code, _, err = run_cli("measure", exams[0] / "dicom", "--out", tmp_path / "m2", "--roi", tmp_path / "m" / "roi.seg.nrrd")
    assert json.loads((tmp_path / "m2" / "result.json").read_text())["mean_kpa"] == pytest.approx(result["mean_kpa"])


def test_cli_many_exams_one_model_load(tmp_path, tiny):
    path, exams = tiny
    code, _, err = run_cli("measure", *[d / "dicom" for d in exams[:3]], "--out", tmp_path / "many", "--model", path)
    assert code == 0, err
    folders = sorted(p for p in (tmp_path / "many").iterdir() if p.is_dir())
    assert len(folders) == 3 and all((f / "result.json").exists() for f in folders)
    assert err.count("INFO: model ") == 1  # loaded once


def test_cli_bad_model_and_device(tmp_path, tiny):
    path, exams = tiny
    bad = tmp_path / "bad.mrefmodel"
    bad.write_bytes(path.read_bytes()[:-10])
    code, _, err = run_cli("segment", exams[0] / "dicom", "--out", tmp_path / "o", "--model", bad)
    assert code == 2 and err.count("\n") == 1 and "SHA-256" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli("segment", exams[0] / "dicom", "--out", tmp_path / "o", "--model", path, "--device", "cuda")
        assert code == 2 and "CUDA" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_exam_without_valid_pixels_is_indeterminate(tmp_path, tiny):
    from mrefibrosis.pipeline import process_exam

    exam = read_exam(tiny[1][0] / "dicom")
    exam.valid[:] = False
    exam.confidence_valid[:] = False
    result = process_exam(exam, None, segmenter=Segmenter(tiny[0], device="cpu"))
    assert result.measurement.status == "indeterminate" and result.measurement.mean_kpa is None


def test_rewritten_model_is_refused_by_its_published_checksum(tmp_path):
    """The checksum inside a model file is rewritten with the payload; the published one is not."""
    import hashlib
    import shutil

    from mrefibrosis.model.inference import DEFAULT_MODEL

    shipped = DEFAULT_MODEL
    sums = shipped.parent / "SHA256SUMS"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() in sums.read_text()
    info, state, _ = read_model_file(shipped)  # the shipped file matches its published checksum

    # a well-formed file with other weights under the shipped name, next to the shipped SHA256SUMS
    site = tmp_path / "weights"
    site.mkdir()
    shutil.copy(sums, site / "SHA256SUMS")
    model = build_model(info.architecture, len(info.preprocessing.channels), info.base_channels, len(info.outputs))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    with torch.no_grad():
        next(iter(model.parameters())).add_(0.5)
    forged = site / shipped.name
    save_model(forged, model, info)
    with pytest.raises(ModelFileError, match="published checksum"):
        read_model_file(forged)
    with pytest.raises(ModelFileError, match="published checksum"):
        Segmenter(forged, device="cpu")
    # without a SHA256SUMS only the inner checksum is there (it passes); a checksum given by the site is enforced
    (site / "SHA256SUMS").unlink()
    read_model_file(forged)
    with pytest.raises(ModelFileError, match="checksum given"):
        read_model_file(forged, expected_sha256=hashlib.sha256(shipped.read_bytes()).hexdigest())
    assert read_model_file(forged, expected_sha256=hashlib.sha256(forged.read_bytes()).hexdigest())[0].architecture == info.architecture
