"""How a non-square exam grid reaches the network: stretched (models up to v3) or padded to a square."""

import numpy as np
import pytest
import torch

from mrefibrosis.errors import MREFibrosisError
from mrefibrosis.model.model_file import ModelFileError, ModelInfo, Preprocessing, read_model_file, save_model
from mrefibrosis.model.preprocess import Canvas, resize_bilinear, to_exam_grid, to_model_input
from mrefibrosis.training.augment import batch_tensors
from mrefibrosis.training.config import TrainConfig


def test_canvas_pads_a_siemens_grid_to_a_centred_square():
    canvas = Canvas.for_grid((204, 256), "pad")
    assert canvas.shape == (256, 256) and (canvas.top, canvas.left) == (26, 0)
    x = np.arange(204 * 256, dtype=np.float32).reshape(1, 204, 256) + 1
    placed = canvas.place(x)
    assert placed.shape == (1, 256, 256)
    assert not placed[:, :26].any() and not placed[:, 230:].any()
    np.testing.assert_array_equal(canvas.crop(placed), x)
    tall = Canvas.for_grid((96, 80), "pad")
    assert tall.shape == (96, 96) and (tall.top, tall.left) == (0, 8)


def test_stretch_is_the_plain_resize_and_square_grids_do_not_change():
    rng = np.random.default_rng(1)
    x = rng.random((2, 2, 204, 256), dtype=np.float32)
    stretch, pad = Preprocessing(input_size=64), Preprocessing(input_size=64, fit="pad")
    np.testing.assert_array_equal(to_model_input(x, stretch), resize_bilinear(x, (64, 64)))
    sq = rng.random((2, 2, 128, 128), dtype=np.float32)
    np.testing.assert_array_equal(to_model_input(sq, pad), to_model_input(sq, stretch))


def test_padding_keeps_the_pixel_aspect_ratio():
    # a disc on a 204 x 256 grid stays a disc at the model size when padded, and becomes an ellipse when stretched
    r, c = np.mgrid[:204, :256]
    disc = (((r - 102) ** 2 + (c - 128) ** 2) <= 60**2).astype(np.float32)[None, None]
    for fit, want_ratio in (("pad", 1.0), ("stretch", 256 / 204)):
        m = to_model_input(disc, Preprocessing(input_size=256, fit=fit))[0, 0] >= 0.5
        rows, cols = np.nonzero(m)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height / width == pytest.approx(want_ratio, abs=0.03), fit


@pytest.mark.parametrize("fit", ["pad", "stretch"])
@pytest.mark.parametrize("grid", [(204, 256), (256, 204), (256, 256)])
def test_masks_come_back_onto_the_exam_grid(fit, grid):
    pre = Preprocessing(input_size=512, fit=fit)
    mask = np.random.default_rng(2).random((3, 1) + grid) < 0.3
    back = to_exam_grid(to_model_input(mask.astype(np.float32), pre), grid, pre)
    assert back.shape == mask.shape
    np.testing.assert_array_equal(back >= 0.5, mask)


def test_training_batches_are_placed_like_inference():
    """A training slice and its target go through the same canvas as an inference input."""
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    image = rng.random((1, 1, 204, 256), dtype=np.float32)
    target = np.zeros((1, 204, 256), bool)
    target[0, 90:120, 100:140] = True
    ex = SimpleNamespace(image=image, low_confidence=None, target=target, liver=None)
    pre = Preprocessing(input_size=64, fit="pad")
    x, y, _ = batch_tensors([ex], [(0, 0)], pre, None, None)
    np.testing.assert_allclose(x.numpy(), to_model_input(image, pre), atol=1e-6)
    want = to_model_input(target[:, None].astype(np.float32), pre) >= 0.5
    np.testing.assert_array_equal(y.numpy().astype(bool), want)


def test_model_file_records_the_fit_and_refuses_an_unknown_one(tmp_path):
    from mrefibrosis.model.architectures import UNET_CLASSIC, build_model

    model = build_model(UNET_CLASSIC, base_channels=4)
    path = tmp_path / "pad.mrefmodel"
    save_model(path, model, ModelInfo(UNET_CLASSIC, Preprocessing(input_size=64, fit="pad"), base_channels=4))
    assert read_model_file(path)[0].preprocessing.fit == "pad"
    bad = tmp_path / "crop.mrefmodel"
    save_model(bad, model, ModelInfo(UNET_CLASSIC, Preprocessing(input_size=64, fit="crop"), base_channels=4))
    with pytest.raises(ModelFileError, match="crop"):
        read_model_file(bad)


def test_train_config_fit_default_and_refusal():
    assert TrainConfig().fit == "stretch"  # the paper's resize and the shipped model's
    assert TrainConfig.from_dict(TrainConfig(fit="pad").to_dict()).fit == "pad"  # a resumed run keeps it
    old = TrainConfig().to_dict()
    del old["fit"]
    assert TrainConfig.from_dict(old).fit == "stretch"  # runs from before --fit existed stretched
    with pytest.raises(MREFibrosisError, match="--fit"):
        TrainConfig(fit="crop").validate()


def test_torch_and_numpy_resizes_agree_on_the_canvas():
    """Training resizes with torch, inference with numpy: the same canvas gives the same input."""
    from mrefibrosis.model.preprocess import to_model_size

    x = np.random.default_rng(4).random((2, 2, 204, 256), dtype=np.float32)
    pre = Preprocessing(input_size=256, fit="pad")
    canvas = Canvas.for_grid(x.shape[-2:], pre.fit)
    via_torch = to_model_size(torch.from_numpy(canvas.place(x)), 256).numpy()
    np.testing.assert_allclose(via_torch, to_model_input(x, pre), atol=1e-5)
