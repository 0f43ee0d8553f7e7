"""imresize: MATLAB bicubic, checked against the benchmark's own LR files."""

import numpy as np
import pytest
from PIL import Image

from hvar.imresize import cubic, imresize, imresize_uint8, resize_matrix, round_uint8
from hvar.paths import data_root

SET5 = ("baby", "bird", "butterfly", "head", "woman")


@pytest.fixture(scope="module")
def set5():
    return data_root() / "dev" / "Set5"


def _load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _lr_diffs(set5, scale):
    diffs = []
    for name in SET5:
        hr = _load(set5 / "HR" / f"{name}.png")
        h, w = hr.shape[:2]
        lr = imresize_uint8(hr[: h - h % scale, : w - w % scale], 1 / scale)
        ref = _load(set5 / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        assert lr.shape == ref.shape, name
        diffs.append(int(np.abs(lr.astype(int) - ref).max()))
    return diffs


@pytest.mark.benchmark_data("datasets")
@pytest.mark.parametrize("scale", [2, 4])
def test_reproduces_set5_lr_bicubic_within_one_level(set5, scale):
    assert max(_lr_diffs(set5, scale)) <= 1


@pytest.mark.benchmark_data("datasets")
@pytest.mark.parametrize("scale", [2, 4])
def test_reproduces_set5_lr_bicubic_bit_exactly(set5, scale):
    # Rounding to uint8 between the two passes, as MATLAB does, makes the match exact.
    assert _lr_diffs(set5, scale) == [0] * len(SET5)


def test_cubic_kernel_interpolates():
    np.testing.assert_allclose(cubic(np.array([0.0, 1.0, -1.0, 2.0, -2.0, 2.5])), [1, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("in_len,out_len", [(16, 8), (16, 4), (17, 5), (8, 16), (5, 20), (7, 7)])
def test_weight_matrix_rows_sum_to_one(in_len, out_len):
    W = resize_matrix(in_len, out_len)
    assert W.shape == (out_len, in_len)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)


def test_weight_matrices_reproduce_imresize():
    # The ONNX export relies on this: resizing is W_h @ x @ W_w^T with fixed matrices.
    x = np.random.default_rng(0).uniform(0, 255, (24, 36))
    y = resize_matrix(24, 6) @ x @ resize_matrix(36, 9).T
    np.testing.assert_allclose(imresize(x, 0.25), y, atol=1e-9)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2, 4])
def test_constant_image_stays_constant(scale):
    x = np.full((20, 12, 3), 77.0)
    np.testing.assert_allclose(imresize(x, scale), 77.0, atol=1e-9)
    assert (imresize_uint8(x.astype(np.uint8), scale) == 77).all()


def test_downscale_then_upscale_restores_modcropped_shape():
    hr = np.random.default_rng(1).integers(0, 256, (50, 37, 3), dtype=np.uint8)[:48, :36]
    lr = imresize_uint8(hr, 1 / 4)
    assert lr.shape == (12, 9, 3)
    sr = imresize_uint8(lr, 4)
    assert sr.shape == hr.shape
    assert sr[4:-4, 4:-4].shape == (40, 28, 3)


def test_output_size_is_ceil_of_scaled_size():
    assert imresize(np.zeros((7, 5)), 0.5).shape == (4, 3)
    assert imresize(np.zeros((300, 301)), 1 / 3).shape == (100, 101)


def test_output_shape_overrides_scale():
    assert imresize(np.zeros((10, 10, 3)), output_shape=(5, 20)).shape == (5, 20, 3)


def test_grey_and_colour_resize_channel_by_channel():
    rgb = np.random.default_rng(2).uniform(0, 255, (16, 16, 3))
    out = imresize(rgb, 0.5)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], imresize(rgb[..., c], 0.5), atol=1e-9)


def test_round_uint8_rounds_half_away_from_zero_and_saturates():
    x = np.array([0.5, 1.5, 2.5, 2.49, -0.5, -3.0, 255.4, 255.6, 300.0])
    assert round_uint8(x).tolist() == [1, 2, 3, 2, 0, 0, 255, 255, 255]


def test_imresize_uint8_rejects_float_input():
    with pytest.raises(TypeError):
        imresize_uint8(np.zeros((4, 4)), 0.5)
