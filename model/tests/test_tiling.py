"""The evaluation cuts and stitches images as the runner does: one specification, one golden file."""

import json
from pathlib import Path

import numpy as np
import pytest

from hvar.tiling import (
    Blender,
    axis_weights,
    cut_tile,
    fit_side,
    golden,
    golden_fitted,
    reflect_index,
    tile_starts,
)

GOLDEN = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "tiling-golden.json"


def test_tiles_cover_the_mirrored_image_and_the_last_one_ends_at_its_edge():
    assert tile_starts(8, 16, 4) == [-4]
    assert tile_starts(40, 16, 4) == [-4, 8, 20, 28]
    assert tile_starts(40, 16, 0) == [0, 16, 24]
    assert tile_starts(128, 64, 0) == [0, 64] and tile_starts(150, 64, 0) == [0, 64, 86]


def test_an_overlap_above_half_a_tile_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(40, 16, 9)


def test_neighbouring_ramps_add_up_to_one():
    a, b = axis_weights(16, 4, False, True), axis_weights(16, 4, True, False)
    np.testing.assert_allclose(a[-4:] + b[:4], 1, atol=1e-6)


@pytest.mark.parametrize(
    "hw, tile_hw, scale",
    [((50, 70), (32, 32), 2), ((50, 130), (48, 64), 4)],  # square tiles; fitted oblong ones (fit_side)
)
def test_a_flat_image_stays_exactly_flat_through_the_blend(hw, tile_hw, scale):
    (H, W), (th, tw), overlap = hw, tile_hw, 8
    ys, xs = tile_starts(H, th, overlap), tile_starts(W, tw, overlap)
    blend = Blender((H, W), ys, xs, (th, tw), overlap, scale)
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            blend.add(r, c, y, x, np.full((3, scale * th, scale * tw), 0.3))
    np.testing.assert_allclose(blend.image(), 0.3, atol=1e-12)


def test_pixels_past_the_edges_are_mirrored_without_repeating_the_edge():
    assert reflect_index(np.array([-2, -1, 0, 4, 5, 6, 12]), 5).tolist() == [2, 1, 0, 4, 3, 2, 4]
    img = np.arange(3, dtype=np.uint8).reshape(1, 3, 1).repeat(2, 0).repeat(3, 2)
    assert cut_tile(img, 0, -2, 5)[0, :, 0].tolist() == [2, 1, 0, 1, 2]


def test_fitted_tiles_are_the_fewest_that_cover_an_axis_each_as_short_as_the_step_allows():
    assert fit_side(480, 384, 32, 16) == 288  # 544 mirrored px: 2 tiles of 288 (a 192-px tile: 4)
    assert fit_side(270, 384, 32, 16) == 336  # one tile holds 334 mirrored px
    assert fit_side(8, 384, 32, 16) == 80  # never below twice the overlap, rounded to the step
    assert len(tile_starts(1000, fit_side(1000, 384, 32, 16), 32)) == 3


def test_a_fitted_side_never_exceeds_the_graphs_tile_and_is_a_multiple_of_the_step():
    for n in range(1, 1200, 7):
        side = fit_side(n, 384, 32, 16)
        assert side <= 384 and side % 16 == 0 and side >= 64
        starts = tile_starts(n, side, 32)
        assert starts[-1] + side >= n + 32  # the mirrored axis is covered
        assert len(starts) == (1 if n + 64 <= 384 else -(-(n + 32) // 352))  # no more tiles than 384-px ones


def test_a_tile_step_that_does_not_divide_the_tile_is_refused():
    with pytest.raises(ValueError, match="multiple"):
        fit_side(100, 100, 8, 16)


class NearestModel:
    """A per-pixel model of the runner's contract: x1 the tile, x2 and x4 each pixel repeated; records the
    tile shapes it is given."""

    tile, tokens, overlap, tile_step = 64, 0, 8, 16

    def __init__(self):
        self.shapes = []

    def __call__(self, lr01_N3HW, noise, temperature):
        self.shapes.append(tuple(lr01_N3HW.shape[2:]))
        return [lr01_N3HW.repeat_interleave(s, 2).repeat_interleave(s, 3) for s in (1, 2, 4)]


def test_the_evaluation_cuts_a_fitted_model_into_the_runners_oblong_tiles_and_loses_no_pixel():
    from hvar.eval_sr import upscale

    model = NearestModel()
    lr = np.random.default_rng(0).integers(0, 256, (50, 130, 3), dtype=np.uint8)
    out = upscale(model, lr)
    assert set(model.shapes) == {(fit_side(50, 64, 8, 16), fit_side(130, 64, 8, 16))} == {(48, 64)}
    for s in (1, 2, 4):
        np.testing.assert_array_equal(out[s], lr.repeat(s, 0).repeat(s, 1))


def test_the_golden_file_is_what_this_implementation_computes():
    """The runner's tests read the same file (test/gpu-runner/tiling.test.ts)."""
    doc = json.loads(GOLDEN.read_text())
    assert doc["cases"] == golden() and doc["fitted"] == golden_fitted()
