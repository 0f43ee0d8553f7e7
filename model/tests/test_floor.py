"""The restoration stage: SPAN written from its description, the published weights, the extra heads."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvar import eval as protocol
from hvar.config import FLOOR_PRESETS
from hvar.floor import Floor, cascade, from_span, grow, load_floor, save_floor, span_state, subpixel_mean
from hvar.train_floor import SPAN_WEIGHTS


def random_floor(seed: int = 0, stages: int = 1) -> Floor:
    torch.manual_seed(seed)
    return Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], stages=stages)).eval()


def test_outputs_are_x1_x2_x4_of_any_input_size():
    lr = torch.rand(2, 3, 12, 20)
    x1, x2, x4 = random_floor()(lr)
    assert (x1.shape, x2.shape, x4.shape) == ((2, 3, 12, 20), (2, 3, 24, 40), (2, 3, 48, 80))


@pytest.mark.parametrize("stages", [1, 2])
def test_a_pixel_beyond_the_receptive_radius_changes_nothing(stages):
    """The network is purely local, so tiles that share the radius stitch without seams."""
    model = random_floor(stages=stages)
    r = model.receptive_radius
    lr = torch.rand(1, 3, 2 * r + 8, 2 * r + 8)
    far = lr.clone()
    far[..., -1, -1] = 1 - far[..., -1, -1]
    with torch.no_grad():
        a, b = model(lr)[2], model(far)[2]
    assert torch.equal(a[..., : 4 * (r + 1), : 4 * (r + 1)], b[..., : 4 * (r + 1), : 4 * (r + 1)])
    assert not torch.equal(a, b)


def test_a_two_stage_floor_upscales_its_own_x1():
    restorer, upscaler = random_floor(seed=4), random_floor(seed=5)
    two = cascade(restorer, upscaler, dataclasses.replace(restorer.cfg, stages=2)).eval()
    lr = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        x1 = restorer(lr)[0]
        expected = (x1, *upscaler(x1)[1:])
        for a, b in zip(two(lr), expected, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert two.receptive_radius == restorer.receptive_radius + upscaler.receptive_radius


def test_restore_is_the_x1_that_the_forward_pass_gives_before_its_clamp():
    model = random_floor(seed=7, stages=2)
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(model.restore(lr).clamp(0, 1), model(lr)[0], rtol=0, atol=0)


def test_a_two_stage_floor_saves_and_loads_both_stages(tmp_path):
    model = random_floor(seed=6, stages=2)
    save_floor(model, tmp_path / "run")
    loaded = load_floor(tmp_path / "run")
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(lr), loaded(lr), strict=True))
    assert loaded.cfg.stages == 2


def test_a_subpixel_mean_head_outputs_the_area_average_of_x4():
    """x2 starts as x4 downscaled: the head derived from x4's weights gives exactly that."""
    model = random_floor()
    top = model.heads["x4"]
    with torch.no_grad():
        model.heads["x2"].weight.copy_(subpixel_mean(top.weight, 4, 2))
        model.heads["x2"].bias.copy_(subpixel_mean(top.bias, 4, 2))
        model.train()  # unclamped, so the identity holds exactly
        _, x2, x4 = model(torch.rand(1, 3, 10, 10))
    torch.testing.assert_close(x2, F.avg_pool2d(x4, 2), atol=1e-5, rtol=0)


def test_x1_is_the_input_plus_a_correction_that_starts_at_zero():
    model = random_floor()
    with torch.no_grad():
        model.heads["x1"].weight.zero_()
        model.heads["x1"].bias.zero_()
        lr = torch.rand(1, 3, 10, 10)
        assert torch.equal(model(lr)[0], lr)


def test_saved_and_loaded_floor_computes_the_same(tmp_path):
    model = random_floor(seed=1)
    save_floor(model, tmp_path / "run")
    loaded = load_floor(tmp_path / "run")
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(lr), loaded(lr), strict=True))
    assert loaded.cfg == model.cfg


def widened(model: Floor, ch: int, seed: int = 7) -> Floor:
    torch.manual_seed(seed)
    return grow(model, dataclasses.replace(model.cfg, ch=ch)).eval()


def test_a_widened_floor_computes_exactly_what_the_narrow_one_computes():
    narrow = random_floor(seed=2)
    wide = widened(narrow, ch=narrow.cfg.ch + 5)
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        for a, b in zip(narrow(lr), wide(lr), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_a_cascade_grows_its_restorer_and_keeps_its_upscaler():
    narrow = random_floor(seed=4, stages=2)
    ch = narrow.cfg.ch
    wide = grow(narrow, dataclasses.replace(narrow.cfg, ch=ch + 4, upscaler_ch=ch)).eval()
    assert wide.conv_1.out_channels == ch + 4 and wide.upscaler.conv_1.out_channels == ch
    lr = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        for a, b in zip(narrow(lr), wide(lr), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_a_cascade_given_x2_blocks_computes_what_it_computed_until_they_train():
    """The blocks start as the identity, so a trained cascade gains them without losing what it knew."""
    plain = random_floor(seed=4, stages=2)
    refined = grow(plain, dataclasses.replace(plain.cfg, x2_blocks=2)).eval()
    assert len(refined.upscaler.x2_body) == 2 and len(refined.x2_body) == 0  # the restorer makes no x2
    lr = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        for a, b in zip(plain(lr), refined(lr), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_growing_never_drops_trained_x2_blocks():
    refined = random_floor(seed=4, stages=2)
    refined = grow(refined, dataclasses.replace(refined.cfg, x2_blocks=1))
    with pytest.raises(ValueError, match="fewer x2 blocks"):
        grow(refined, dataclasses.replace(refined.cfg, x2_blocks=0))


def test_x2_blocks_change_x2_alone_and_widen_its_receptive_radius():
    torch.manual_seed(0)
    model = Floor(dataclasses.replace(FLOOR_PRESETS["tiny"], x2_blocks=1)).eval()
    plain = Floor(FLOOR_PRESETS["tiny"]).eval()
    assert model.receptive_radius == plain.receptive_radius + 2
    r = model.receptive_radius
    with torch.no_grad():
        for p in model.x2_body.parameters():
            p.normal_(0, 0.1)
        lr = torch.rand(1, 3, 2 * r + 8, 2 * r + 8)
        before = model(lr)
        far = lr.clone()
        far[..., -1, -1] = 1 - far[..., -1, -1]
        x2 = model(far)[1]
        model.x2_body = torch.nn.Sequential()
        after = model(lr)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])
    assert torch.equal(before[1][..., : 2 * (r + 1), : 2 * (r + 1)], x2[..., : 2 * (r + 1), : 2 * (r + 1)])


def test_a_widened_floors_new_channels_carry_signal_and_learn():
    narrow = random_floor(seed=3)
    wide = widened(narrow, ch=narrow.cfg.ch + 4).train()
    lr = torch.rand(1, 3, 12, 12)
    assert wide.features(lr)[:, narrow.cfg.ch :].abs().sum() > 0
    sum(x.square().mean() for x in wide(lr)).backward()
    assert wide.heads["x4"].weight.grad[:, narrow.cfg.ch :].abs().sum() > 0


@pytest.mark.benchmark_data("pretrained")
def test_the_published_checkpoint_loads_into_every_weight():
    state = span_state(SPAN_WEIGHTS)
    body = {
        k for k in Floor(FLOOR_PRESETS["base"]).state_dict() if not k.startswith(("heads.x1", "heads.x2"))
    }
    assert set(state) == body


@pytest.mark.benchmark_data("pretrained", "datasets")
def test_pretrained_span_reproduces_its_published_set5_x4_score():
    """SPAN-ch28 on Set5 x4, MATLAB bicubic LR, PSNR/SSIM-Y: 31.73 / 0.8898 (../shared/pretrained)."""
    model = from_span(dataclasses.replace(FLOOR_PRESETS["base"]), SPAN_WEIGHTS).eval()

    def method(lr: np.ndarray, scale: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            y = model(x)[2][0]
        return (y * 255).round().byte().permute(1, 2, 0).numpy()

    _, folder = protocol.resolve_dataset("Set5")
    r = protocol.evaluate_dataset(folder, 4, method, progress=False)
    assert r["psnr"] == pytest.approx(31.73, abs=0.02) and r["ssim"] == pytest.approx(0.8898, abs=0.0005)


@pytest.mark.benchmark_data("pretrained")
def test_the_cascade_preset_from_span_is_span_behind_an_identity_restorer():
    """Started from the published weights alone, a clean input comes back as it went in at x1, and x2 and x4
    are the published SPAN's."""
    span = from_span(FLOOR_PRESETS["base"], SPAN_WEIGHTS).eval()
    two = from_span(FLOOR_PRESETS["cascade"], SPAN_WEIGHTS).eval()
    lr = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        x1, x2, x4 = two(lr)
        torch.testing.assert_close(x1, lr, rtol=0, atol=0)
        for a, b in zip((x2, x4), span(lr)[1:], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def with_context(model: Floor, width: int = 8, seed: int = 9) -> Floor:
    torch.manual_seed(seed)
    return grow(model, dataclasses.replace(model.cfg, context=width)).eval()


def test_a_floor_given_the_context_computes_exactly_what_it_computed():
    plain = random_floor(seed=5, stages=2)
    grown = with_context(plain)
    assert grown.context is not None and grown.upscaler.context is None
    lr = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        for a, b in zip(plain(lr), grown(lr), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_the_context_reads_the_whole_tile_once_trained():
    model = with_context(random_floor(seed=6, stages=2))
    torch.nn.init.normal_(model.context.film.weight, std=0.1)  # as if trained: no longer a no-op
    r = model.receptive_radius
    lr = torch.rand(1, 3, 2 * r + 8, 2 * r + 8)
    far = lr.clone()
    far[..., -4:, -4:] = 1 - far[..., -4:, -4:]
    with torch.no_grad():
        a, b = model(lr)[0], model(far)[0]
    assert not torch.equal(a[..., :4, :4], b[..., :4, :4])  # beyond the radius, through the tile's mean
