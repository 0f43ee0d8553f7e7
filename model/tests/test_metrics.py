"""PSNR/SSIM on Y, the SR papers' convention."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvar.metrics import gaussian_window, psnr_y, rgb_to_y, ssim_y, streakiness


def _img(seed, shape=(40, 48, 3)):
    return np.random.default_rng(seed).integers(20, 230, shape, dtype=np.uint8)


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    a = _img(0)
    assert psnr_y(a, a.copy()) == math.inf
    assert ssim_y(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_constant_grey_offset_gives_known_psnr():
    a = _img(1, (32, 32))
    # mse = 10^2 -> 10 log10(255^2 / 100)
    assert psnr_y(a + np.uint8(10), a) == pytest.approx(20 * math.log10(25.5), abs=1e-9)


def test_constant_rgb_offset_is_scaled_by_the_luma_range():
    a = _img(2)
    d = 10 * 219 / 255  # Y spans 16..235 for RGB 0..255
    assert psnr_y(a + np.uint8(10), a) == pytest.approx(20 * math.log10(255 / d), abs=1e-9)


def test_rgb_to_y_matches_matlab_rgb2ycbcr_range():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(rgb), [[16.0, 235.0, 16 + 65.481]], atol=1e-9)


def test_y_is_not_rounded():
    assert rgb_to_y(np.array([[[1, 2, 3]]], dtype=np.uint8))[0, 0] % 1 != 0


def test_grey_images_are_scored_on_their_grey_level():
    a, b = _img(3, (30, 30)), _img(4, (30, 30))
    mse = np.mean((a.astype(float) - b) ** 2)
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert 0 < ssim_y(a, b) < 1


def test_uint8_and_float_inputs_score_the_same():
    a, b = _img(5), _img(6)
    assert psnr_y(a, b, 2) == pytest.approx(psnr_y(a.astype(float), b.astype(float), 2))
    assert ssim_y(a, b, 2) == pytest.approx(ssim_y(a.astype(np.float32), b.astype(float), 2))


def test_shave_ignores_the_border():
    a = _img(7)
    b = a.copy()
    b[:3] = 0
    b[:, -3:] = 255
    assert psnr_y(b, a, shave=3) == math.inf
    assert psnr_y(b, a, shave=2) < 30


def test_ssim_matches_direct_2d_gaussian_filtering():
    # Independent reference: Wang et al.'s ssim_index with a full 11x11 window and 'valid' conv2d.
    a, b = _img(8).astype(np.float64), _img(9).astype(np.float64)
    a, b = rgb_to_y(a), rgb_to_y(b)
    g = gaussian_window()
    win = torch.from_numpy(np.outer(g, g))[None, None]

    def filt(x):
        return F.conv2d(torch.from_numpy(x)[None, None], win)[0, 0].numpy()

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = filt(a), filt(b)
    va, vb, cov = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    ref = np.mean((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    assert ssim_y(a, b) == pytest.approx(ref, abs=1e-12)


def test_gaussian_window_is_matlab_fspecial():
    g = gaussian_window(11, 1.5)
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0)
    assert g[5] / g[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_ssim_is_symmetric_and_drops_with_noise():
    a = _img(10)
    rng = np.random.default_rng(0)
    light = np.clip(a + rng.normal(0, 3, a.shape), 0, 255)
    heavy = np.clip(a + rng.normal(0, 30, a.shape), 0, 255)
    assert ssim_y(a, light) == pytest.approx(ssim_y(light, a))
    assert 1 > ssim_y(a, light) > ssim_y(a, heavy) > 0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        psnr_y(_img(0, (10, 10, 3)), _img(0, (10, 12, 3)))


def _stripes(base: np.ndarray, axis: int) -> np.ndarray:
    """base plus stripes 1 px wide alternating +-6 grey levels across `axis` (1: vertical stripes)."""
    shape = [1, 1, 1]
    shape[axis] = base.shape[axis]
    sign = np.where(np.arange(base.shape[axis]) % 2 == 0, 6, -6).reshape(shape)
    return (base.astype(np.int16) + sign).clip(0, 255).astype(np.uint8)


def test_streakiness_is_high_for_stripes_in_either_direction_and_low_for_noise():
    base = _img(0)
    noise = (base + np.random.default_rng(1).normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
    assert streakiness(_stripes(base, 1), base) > 3  # vertical stripes: all change is across
    assert streakiness(_stripes(base, 0), base) > 3  # horizontal ones: the same score
    assert streakiness(noise, base) < 0.3


def test_streakiness_of_nothing_added_is_zero():
    assert streakiness(_img(0), _img(0)) == 0.0
