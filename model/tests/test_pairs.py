"""The cached training pairs: fixed by their seed, every target where it belongs."""

import numpy as np
import pytest

from hvar.data import load_images
from hvar.degrade import bicubic_lr
from hvar.pairs import Pairs, build, make_pair, photo_levels, unusable
from hvar.paths import data_root


@pytest.fixture
def images(photo_root):
    return load_images(str(data_root() / "train"))


def test_an_x4_pair_holds_the_clean_targets_of_its_hr_crop(images):
    p = make_pair((images,), "x4", 0, 16, seed=0)
    assert {k: v.shape for k, v in p.items()} == {
        "lr": (16, 16, 3), "t1": (16, 16, 3), "t2": (32, 32, 3), "t4": (64, 64, 3)
    }  # fmt: skip
    assert np.array_equal(p["t1"], bicubic_lr(p["t4"], 4)) and np.array_equal(p["t2"], bicubic_lr(p["t4"], 2))
    assert np.array_equal(p["lr"], p["t1"])  # even pairs: bicubic LR, i.e. the clean LR itself


def test_odd_pairs_are_degraded_and_x2_pairs_have_no_x4_target(images):
    p = make_pair((images,), "x2", 1, 16, seed=0)
    assert set(p) == {"lr", "t1", "t2"}
    assert not np.array_equal(p["lr"], p["t1"])  # realistic LR differs from the clean one


def test_photo_levels_hold_every_photo_at_each_size(images):
    levels = photo_levels(images, (1.0, 0.5))
    assert levels[0] is images
    assert [im.shape[:2] for im in levels[1]] == [((h + 1) // 2, (w + 1) // 2) for h, w, _ in
                                                   (im.shape for im in images)]  # fmt: skip


def test_a_pair_from_downscaled_photos_holds_finer_detail():
    """The same draws from a grating photo as taken and at half size: the half-size crops change twice as
    much from pixel to pixel (the photo's detail packed twice as densely)."""
    yy, xx = np.mgrid[0:128, 0:160]
    grating = (128 + 60 * np.sin(2 * np.pi * (xx + yy) / 24))[..., None].repeat(3, 2).astype(np.uint8)

    def roughness(levels):
        crops = [
            make_pair(levels, "x2", 2 * i, 16, seed=0, synthetic=0)["t2"].astype(float) for i in range(8)
        ]
        return np.mean([np.abs(np.diff(c, axis=1)).mean() for c in crops])

    ratio = roughness(photo_levels((grating,), (0.5,))) / roughness(((grating,),))
    assert 1.8 < ratio < 2.2


def test_a_level_is_drawn_for_each_photo_crop():
    flat = [np.full((64, 64, 3), v, np.uint8) for v in (50, 200)]
    drawn = {int(make_pair(((flat[0],), (flat[1],)), "x2", 2 * i, 8, seed=0, synthetic=0)["t2"][0, 0, 0])
             for i in range(12)}  # fmt: skip
    assert drawn == {50, 200}


def test_a_size_too_small_for_any_crop_is_a_clear_cli_error_before_any_work(photo_root, tmp_path, capsys):
    from hvar.pairs import main

    with pytest.raises(SystemExit):  # the fake photos are 96x112: at 0.3 no 64 px x4 crop of --lr 16 fits
        main(["--out", str(tmp_path / "c"), "--count", "2", "--lr", "16", "--downscale", "1", "0.3"])
    assert "--downscale 0.3 leaves no training photo large enough" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_the_cache_is_the_same_with_one_or_two_workers(photo_root, tmp_path):
    a = build(tmp_path / "a", count=6, lr_side=16, workers=1)
    b = build(tmp_path / "b", count=6, lr_side=16, workers=2)
    for f in sorted(p.name for p in a.glob("*.npy")):
        assert np.array_equal(np.load(a / f), np.load(b / f)), f


def test_a_batch_draws_n_pairs_of_each_kind(photo_root, tmp_path):
    pairs = Pairs(build(tmp_path / "c", count=6, lr_side=16, workers=1))
    batch = pairs.batch(np.random.default_rng(0), 4)
    assert batch["x4"]["t4"].shape == (4, 64, 64, 3) and batch["x2"]["t2"].shape == (4, 32, 32, 3)


def test_an_unfinished_cache_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished pair cache"):
        Pairs(tmp_path)


def test_a_smooth_field_blends_its_four_corner_colours():
    from hvar.pairs import smooth_field

    f = smooth_field(np.random.default_rng(3), 9).astype(int)
    assert f.shape == (9, 9, 3)
    np.testing.assert_allclose(f[4, 4], (f[0, 0] + f[0, -1] + f[-1, 0] + f[-1, -1]) / 4, atol=1)


def test_half_of_the_smooth_fields_are_shallow_gradients():
    from hvar.pairs import smooth_field

    ranges = [
        np.ptp(smooth_field(np.random.default_rng(s), 64).astype(int), axis=(0, 1)).max() for s in range(40)
    ]
    shallow = sum(r <= 40 for r in ranges)
    assert 10 <= shallow <= 30 and max(ranges) > 100


def test_a_fine_texture_changes_by_tens_of_levels_from_one_pixel_to_the_next():
    from hvar.pairs import fine_texture, smooth_field

    def step(img):  # mean absolute difference between neighbours, across and down, in levels
        a = img.astype(int)
        return (np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()) / 2

    textures = [fine_texture(np.random.default_rng(s), 48) for s in range(20)]
    assert all(t.shape == (48, 48, 3) and t.dtype == np.uint8 for t in textures)
    assert np.median([step(t) for t in textures]) > 10
    assert max(step(smooth_field(np.random.default_rng(s), 48)) for s in range(20)) < 6


def test_a_fine_texture_is_fixed_by_its_seed():
    from hvar.pairs import fine_texture

    a, b = (fine_texture(np.random.default_rng(7), 32) for _ in range(2))
    assert np.array_equal(a, b) and not np.array_equal(a, fine_texture(np.random.default_rng(8), 32))


def test_a_cache_built_by_another_recipe_is_refused_with_how_to_rebuild(photo_root, tmp_path):
    folder = build(tmp_path / "c", count=2, lr_side=16, workers=1)
    assert unusable(folder) is None
    (folder / "done").write_text("count=2 lr=16 seed=0 synthetic=0.05\n")  # as written before recipes
    assert "recipe 1" in unusable(folder) and "rebuild" in unusable(folder)
    with pytest.raises(FileNotFoundError, match="recipe 1"):
        Pairs(folder)
