from itertools import islice

import numpy as np
import pytest
import torch

from hvar.data import RandomCrops, batches, dev_set, lr_batches, random_crop, tensor_to_uint8, uint8_to_tensor


def test_crops_are_square_floats_in_minus_one_to_one(photo_root):
    x = next(iter(RandomCrops(64)))
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1


def test_crops_are_deterministic_for_a_seed_and_differ_across_seeds(photo_root):
    a = list(islice(iter(RandomCrops(32, seed=3)), 4))
    b = list(islice(iter(RandomCrops(32, seed=3)), 4))
    c = list(islice(iter(RandomCrops(32, seed=4)), 4))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=True))


def test_random_crop_applies_flips_and_rotations():
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    rng = np.random.default_rng(0)
    seen = {random_crop((img,), 4, rng).tobytes() for _ in range(200)}
    assert len(seen) == 8  # the dihedral group of the square


def test_lr_hook_gives_bicubic_inputs_a_quarter_of_the_crop(photo_root):
    hr, lr = next(iter(RandomCrops(64, lr_mode="bicubic")))
    assert hr.shape == (3, 64, 64) and lr.shape == (3, 16, 16)


def test_unknown_lr_mode_is_rejected():
    with pytest.raises(ValueError):
        RandomCrops(64, lr_mode="nearest")


def test_batches_stack_samples_and_pairs(photo_root):
    assert next(batches(RandomCrops(32), 5)).shape == (5, 3, 32, 32)
    hr, lr = next(batches(RandomCrops(32, lr_mode="bicubic"), 2))
    assert hr.shape == (2, 3, 32, 32) and lr.shape == (2, 3, 8, 8)


def test_uint8_tensor_conversion_round_trips():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(tensor_to_uint8(uint8_to_tensor(img)), img)


def test_dev_set_lists_hr_images_as_rgb(photo_root):
    items = dev_set("Set5")
    assert [name for name, _ in items] == ["img0", "img1"]
    assert items[0][1].shape == (96, 112, 3)


def test_mixed_lr_batches_are_half_bicubic_half_realistic(photo_root):
    from hvar.degrade import bicubic_lr

    hr, lr = next(lr_batches(32, "mixed", seed=0, batch=4))
    assert hr.shape == (4, 3, 32, 32) and lr.shape == (4, 3, 8, 8)
    for b in range(2):  # the first half is exactly the MATLAB bicubic LR of its crop
        assert (tensor_to_uint8(lr[b]) == bicubic_lr(tensor_to_uint8(hr[b]), 4)).all()
