"""The noise estimate behind `cleanup=auto`: it reads noise, not texture, and the runner's copy of it
(gpu-runner/src/image/noise.ts) is held to the same numbers on test/gpu-runner/fixtures/noise."""

import json

import numpy as np
import pytest
from PIL import Image

from hvar.metrics import rgb_to_y
from hvar.noise import (
    FIXTURES,
    auto_cleanup,
    file_jpeg_quality,
    fixture_images,
    noise_level,
    smooth_field,
    table_quality,
)


def field() -> np.ndarray:
    return smooth_field(96, 128)


def u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [5, 10, 20])
def test_reads_grey_noise_of_a_known_level_within_a_fifth(sigma):
    rng = np.random.default_rng(sigma)
    image = u8(field() + rng.normal(0, sigma, (96, 128, 1)))  # the same noise in R, G and B
    assert noise_level(image) == pytest.approx(sigma * 219 / 255, rel=0.2)  # Y spans 16-235


def test_reads_hard_edged_texture_as_no_noise():
    stripes = field() + 50 * np.sign(np.sin(7 * np.mgrid[0:96, 0:128][1] / 32.0))[..., None]
    assert noise_level(u8(stripes)) < 0.5


def test_reads_a_grey_image_as_its_three_channel_copy():
    grey = u8(rgb_to_y(u8(field())) - 16)
    assert noise_level(grey) == noise_level(np.stack([grey] * 3, -1))


def test_an_image_under_one_patch_has_no_noise_to_read():
    assert noise_level(np.full((6, 50, 3), 90, np.uint8)) == 0.0


def test_auto_cleans_a_noisy_photo_fully_and_a_clean_one_at_the_default():
    rng = np.random.default_rng(0)
    assert auto_cleanup(u8(field())) == 0.75
    assert auto_cleanup(u8(field() + rng.normal(0, 10, (96, 128, 3)))) == 1.0


def test_auto_cleans_a_fine_jpeg_that_is_not_noisy_less_the_finer_it_is():
    rng = np.random.default_rng(0)
    strengths = [auto_cleanup(u8(field()), q) for q in (98, 95, 94, 90, 89, None)]
    assert strengths == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    assert auto_cleanup(u8(field() + rng.normal(0, 10, (96, 128, 3))), 95) == 1.0


@pytest.mark.parametrize("quality", [20, 50, 75, 90, 97])
def test_reads_the_quality_pillow_saved_a_jpeg_at_from_its_table(tmp_path, quality):
    path = tmp_path / "photo.jpg"
    Image.fromarray(u8(field())).save(path, quality=quality)
    assert file_jpeg_quality(path) == quality


def test_a_png_has_no_jpeg_quality(tmp_path):
    Image.fromarray(u8(field())).save(tmp_path / "photo.png")
    assert file_jpeg_quality(tmp_path / "photo.png") is None


STANDARD_LUMINANCE = [  # ITU T.81 Annex K, IJG's quality 50
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip


def test_the_standard_table_itself_reads_as_quality_50():
    assert table_quality(STANDARD_LUMINANCE) == 50


def test_the_runners_parity_fixtures_are_what_this_module_reads():
    recorded = json.loads((FIXTURES / "levels.json").read_text())["levels"]
    assert set(recorded) == set(fixture_images())
    for name, level in recorded.items():
        image = np.asarray(Image.open(FIXTURES / f"{name}.png").convert("RGB"))
        assert noise_level(image) == pytest.approx(level, abs=1e-5), name
    qualities = json.loads((FIXTURES / "levels.json").read_text())["jpegQualities"]
    assert {name: file_jpeg_quality(FIXTURES / name) for name in qualities} == qualities
