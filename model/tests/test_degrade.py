"""Degradations: the bicubic convention and the seeded realistic recipe."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvar.degrade import (
    MILD,
    DegradeConfig,
    Draws,
    bessel_j1,
    bicubic_lr,
    degrade,
    filter2d,
    jpeg,
    light,
    make_lr,
    modcrop,
    random_blur_kernel,
    resize,
    sinc_kernel,
)


def _hr(shape=(96, 80, 3), seed=0):
    # Smooth content plus texture, so blur/noise/JPEG all have something to act on.
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 128 + 80 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    img = base[..., None] + rng.normal(0, 12, shape if len(shape) == 3 else (*shape, 1))
    return np.clip(img, 0, 255).astype(np.uint8).reshape(shape)


def test_same_seed_gives_the_same_lr():
    hr = _hr()
    a = degrade(hr, 4, np.random.default_rng(123))
    b = degrade(hr, 4, np.random.default_rng(123))
    assert np.array_equal(a, b)


def test_another_seed_gives_another_lr():
    hr = _hr()
    assert not np.array_equal(
        degrade(hr, 4, np.random.default_rng(1)), degrade(hr, 4, np.random.default_rng(2))
    )


@pytest.mark.parametrize(
    "scale,shape", [(2, (64, 48, 3)), (4, (96, 80, 3)), (4, (99, 81, 3)), (2, (256, 256, 3))]
)
def test_realistic_lr_has_the_target_size_and_is_uint8(scale, shape):
    rng = np.random.default_rng(0)
    for _ in range(5):  # several draws: every branch must respect the size
        lr = degrade(_hr(shape), scale, rng)
        assert lr.shape == (shape[0] // scale, shape[1] // scale, 3)
        assert lr.dtype == np.uint8


def test_grey_hr_gives_grey_lr():
    lr = degrade(_hr((64, 64)), 4, np.random.default_rng(0))
    assert lr.shape == (16, 16) and lr.dtype == np.uint8


def test_realistic_lr_is_not_bicubic_lr():
    hr = _hr((128, 128, 3))
    assert np.abs(degrade(hr, 4, np.random.default_rng(0)).astype(int) - bicubic_lr(hr, 4)).mean() > 1


def test_degrade_rejects_float_input():
    with pytest.raises(TypeError):
        degrade(_hr().astype(np.float32), 4, np.random.default_rng(0))


def test_bicubic_lr_modcrops_then_downscales():
    assert modcrop(np.zeros((13, 10, 3)), 4).shape == (12, 8, 3)
    assert bicubic_lr(_hr((13, 10, 3)), 4).shape == (3, 2, 3)
    assert bicubic_lr(_hr((13, 10)), 2).shape == (6, 5)


def test_default_config_probabilities_are_distributions():
    cfg = DegradeConfig()
    for order in (cfg.first, cfg.second):
        assert sum(order.kernel_prob) == pytest.approx(1)
        assert sum(order.resize_prob) == pytest.approx(1)
        assert len(order.kernel_prob) == len(order.kernel_list)
    assert cfg.second.blur_sigma == (0.2, 1.5)  # the second order blurs less, as in Real-ESRGAN


def test_random_kernels_sum_to_one_and_are_point_symmetric():
    # Point symmetry makes the FFT convolution equal to the reference's correlation.
    rng = np.random.default_rng(0)
    cfg = DegradeConfig().first
    for _ in range(100):
        size = int(rng.choice([7, 13, 21]))
        k = random_blur_kernel(rng, size, cfg)
        assert k.shape == (size, size)
        assert k.sum() == pytest.approx(1)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)


def test_bessel_j1_known_values():
    np.testing.assert_allclose(
        bessel_j1(np.array([0.0, 1.0, 10.0, 3.8317059702075125])),
        [0.0, 0.44005058574493355, 0.043472746168861436, 0.0],
        atol=1e-14,
    )


def test_sinc_kernel_is_normalised_and_peaks_at_the_centre():
    k = sinc_kernel(21, np.pi / 4)
    assert k.sum() == pytest.approx(1)
    assert k.argmax() == 10 * 21 + 10


def test_filter2d_with_a_delta_is_the_identity():
    x = np.random.default_rng(0).random((17, 23, 3)).astype(np.float32)
    delta = np.zeros((9, 9))
    delta[4, 4] = 1
    np.testing.assert_allclose(filter2d(x, delta), x, atol=1e-5)


def test_filter2d_matches_reflect_padded_conv2d():
    x = np.random.default_rng(0).random((30, 41, 3))
    k = random_blur_kernel(np.random.default_rng(3), 11, DegradeConfig().first)
    xt = F.pad(torch.from_numpy(x).permute(2, 0, 1)[:, None], (5, 5, 5, 5), mode="reflect")
    ref = F.conv2d(xt, torch.from_numpy(k)[None, None])[:, 0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(filter2d(x, k), ref, atol=1e-9)


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("out_hw", [(20, 80), (74, 23), (5, 7)])
def test_resize_matches_torch_interpolate(mode, out_hw):
    x = np.random.default_rng(0).random((37, 53, 3)).astype(np.float32)
    kw = {} if mode == "area" else {"align_corners": False}
    ref = F.interpolate(torch.from_numpy(x).permute(2, 0, 1)[None], size=out_hw, mode=mode, **kw)
    np.testing.assert_allclose(resize(x, out_hw, mode), ref[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_a_light_defect_changes_the_image_a_little_and_keeps_its_size():
    lr = bicubic_lr(_hr(), 4)
    for seed in (0, 1, 11):  # a blur, noise, a JPEG round trip: the first draw of each seed picks the kind
        out = light(lr, np.random.default_rng(seed))
        assert out.shape == lr.shape and out.dtype == np.uint8
        mse = np.mean((out.astype(float) - lr.astype(float)) ** 2)
        assert 0 < mse < 30**2, seed


def test_a_mild_defect_is_fainter_than_a_light_one():
    lr = bicubic_lr(_hr(), 4)

    def mse(**ranges):
        outs = [light(lr, np.random.default_rng(seed), **ranges) for seed in range(12)]
        return [np.mean((out.astype(float) - lr.astype(float)) ** 2) for out in outs]

    light_mse, mild_mse = mse(), mse(**MILD)
    assert all(m > 0 for m in mild_mse)
    assert np.mean(mild_mse) < np.mean(light_mse) / 2


def test_make_lr_names_the_bicubic_convention_and_the_seeded_recipe():
    hr = _hr()
    assert np.array_equal(make_lr(hr, 4, "bicubic"), bicubic_lr(hr, 4))
    real = make_lr(hr, 4, "realistic", np.random.default_rng(3))
    assert np.array_equal(real, degrade(hr, 4, np.random.default_rng(3)))


def test_a_jpeg_degradation_is_the_benchmark_lr_through_a_jpeg_of_that_quality():
    hr = _hr()
    clean = bicubic_lr(hr, 4)
    want = np.round(jpeg(clean.astype(np.float32) / 255.0, 75) * 255.0).astype(np.uint8)
    assert np.array_equal(make_lr(hr, 4, "jpeg75"), want)
    err = {q: np.abs(make_lr(hr, 4, f"jpeg{q}").astype(float) - clean).mean() for q in (30, 90)}
    assert 0 < err[90] < err[30]


def test_a_jpeg_degradation_keeps_grey_grey():
    grey = _hr()[..., 1]
    assert make_lr(grey, 2, "jpeg60").shape == bicubic_lr(grey, 2).shape


def test_make_lr_takes_flipped_and_rotated_views():
    view = np.rot90(_hr()[:, ::-1])
    assert np.array_equal(make_lr(view, 4, "bicubic"), bicubic_lr(np.ascontiguousarray(view), 4))


def test_make_lr_refuses_an_unknown_degradation_and_a_random_one_without_rng():
    for name in ("jpeg", "jpeg0", "jpeg101", "blurry", "noise0", "noise100"):
        with pytest.raises(ValueError, match="unknown degradation"):
            make_lr(np.zeros((8, 8, 3), dtype=np.uint8), 2, name)
    for name in ("realistic", "noise10"):
        with pytest.raises(ValueError, match="needs an rng"):
            make_lr(np.zeros((8, 8, 3), dtype=np.uint8), 2, name)


def test_a_noise_degradation_is_the_benchmark_lr_with_seeded_noise_of_that_level():
    hr = _hr()
    clean = bicubic_lr(hr, 2).astype(np.float64)
    noisy = make_lr(hr, 2, "noise10", np.random.default_rng(1))
    assert np.array_equal(noisy, make_lr(hr, 2, "noise10", np.random.default_rng(1)))
    assert np.std(noisy - clean) == pytest.approx(10, rel=0.15)  # a little less where it clips


def test_recording_the_choices_leaves_the_damage_as_it_was():
    hr = _hr(seed=3)
    draws = Draws(np.random.default_rng(5))
    assert np.array_equal(degrade(hr, 4, draws), degrade(hr, 4, np.random.default_rng(5)))
    assert len(draws.record) > 10


def test_a_replayed_defect_without_noise_is_the_recorded_one_whatever_the_rng():
    lr = _hr((48, 40, 3), seed=4)
    seed = next(s for s in range(50) if np.random.default_rng(s).integers(3) != 1)  # JPEG or blur
    draws = Draws(np.random.default_rng(seed))
    recorded = light(lr, draws)
    assert np.array_equal(light(lr, Draws(np.random.default_rng(99), draws.record)), recorded)


def test_a_replay_on_another_photo_takes_every_recorded_choice():
    draws = Draws(np.random.default_rng(6))
    degrade(_hr(seed=1), 2, draws)
    replay = Draws(np.random.default_rng(7), draws.record)
    assert degrade(_hr(seed=2), 2, replay).shape == (48, 40, 3)
    assert replay.exhausted()


def test_a_replay_out_of_step_is_refused():
    draws = Draws(np.random.default_rng(8))
    light(_hr((48, 40, 3)), draws)
    with pytest.raises(RuntimeError, match="out of step"):
        degrade(_hr(), 4, Draws(np.random.default_rng(9), draws.record))
