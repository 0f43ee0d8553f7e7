"""NIQE: BasicSR's reference values on the dev HR images, and what the score should react to."""

import numpy as np
import pytest
from PIL import Image

from hvar.imresize import imresize_uint8
from hvar.niqe import PARAMS_FILE, load_params, main, niqe
from hvar.paths import data_root

# BasicSR's calculate_niqe(img, 0, input_order='HWC', convert_to='y'), from shared/metrics/README.md.
REFERENCE = {
    ("Set14", "baboon"): 5.7296,
    ("Set5", "baby"): 3.2655,
    ("Set5", "bird"): 4.3621,
    ("Set5", "butterfly"): 5.1549,
    ("Set5", "head"): 8.3505,
    ("Set5", "woman"): 4.3890,
}


def _hr_path(dataset, name):
    return data_root() / "dev" / dataset / "HR" / f"{name}.png"


# BasicSR's pristine model; the reference values are on the dev HR images.
needs_shared = pytest.mark.benchmark_data("metrics", "datasets")


def _load(dataset, name):
    return np.asarray(Image.open(_hr_path(dataset, name)).convert("RGB"))


@needs_shared
@pytest.mark.parametrize("dataset,name", list(REFERENCE))
def test_matches_basicsr_on_dev_hr_images(dataset, name):
    assert niqe(_load(dataset, name)) == pytest.approx(REFERENCE[(dataset, name)], abs=1e-3)


@pytest.mark.parametrize("shape", [(95, 400, 3), (96, 191, 3), (191, 96)])
def test_image_without_two_whole_blocks_is_rejected(shape):
    with pytest.raises(ValueError, match="at least two whole 96x96 blocks"):
        niqe(np.full(shape, 128, dtype=np.uint8))


@pytest.mark.benchmark_data("metrics")
def test_flat_image_is_rejected():
    # Flat blocks have no negative coefficients, so their features are NaN and no covariance is left.
    with pytest.raises(ValueError, match="have texture"):
        niqe(np.full((192, 192, 3), 128, dtype=np.uint8))


def _blur(img):
    return imresize_uint8(imresize_uint8(img, 1 / 4), 4)  # bicubic x4 round trip, the classic SR blur


def _noise(img):
    n = np.random.default_rng(0).normal(0, 15, img.shape)
    return np.clip(img + n, 0, 255).round().astype(np.uint8)


@needs_shared
@pytest.mark.parametrize("distort", [_blur, _noise], ids=["blur", "noise"])
def test_distortion_raises_the_score(distort):
    img = _load("Set5", "baby")
    assert niqe(distort(img)) > niqe(img) + 1.0


def test_missing_parameter_file_says_how_to_fix_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="HVAR_METRICS_ROOT"):
        load_params(tmp_path / PARAMS_FILE)


@needs_shared
def test_cli_prints_one_score_per_image(capsys):
    paths = [str(_hr_path("Set5", n)) for n in ("butterfly", "head")]
    main(paths)
    lines = capsys.readouterr().out.splitlines()
    assert [float(line.split()[0]) for line in lines] == pytest.approx([5.1549, 8.3505], abs=1e-3)
    assert [line.split()[1] for line in lines] == paths
