import dataclasses

import pytest

from hvar.config import PRESETS, HVARConfig, TokenizerConfig, get_config


def test_base_segments_end_at_the_latent_sides_of_x1_x2_x4():
    cfg = PRESETS["base"]
    assert cfg.segment_ends == (4, 8, 16)
    assert cfg.segments == ((1, 2, 3, 4), (5, 6, 8), (10, 12, 16))
    assert cfg.tokens_per_segment == (30, 125, 500)
    assert cfg.num_tokens == 655


def test_small_uses_vars_256px_patch_list_with_segments_ending_at_4_8_16():
    cfg = PRESETS["small"]
    assert (cfg.tile, cfg.hr_tile, cfg.f, cfg.vocab_size) == (64, 256, 16, 4096)
    assert cfg.patch_nums == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    assert cfg.segment_ends == (4, 8, 16)


def test_paper_preset_is_lr_128_to_512_with_segment_ends_8_16_32():
    cfg = PRESETS["paper"]
    assert (cfg.tile, cfg.hr_tile, cfg.ch, cfg.ch_mult, cfg.cvae) == (128, 512, 160, (1, 1, 2, 2, 4), 32)
    assert cfg.segment_ends == (8, 16, 32)


def test_plain_mode_quantizes_every_segment_at_full_latent_side():
    cfg = dataclasses.replace(PRESETS["base"], hierarchical=False)
    assert cfg.segment_sides == (16, 16, 16)
    assert cfg.decode_sides == (128, 128, 128)


def test_patch_list_missing_a_segment_end_is_rejected():
    with pytest.raises(ValueError, match="segment end"):
        TokenizerConfig(tile=32, f=8, patch_nums=(1, 2, 3, 5, 8, 16))


def test_patch_list_not_ending_at_full_latent_side_is_rejected():
    with pytest.raises(ValueError, match="must end at the full latent side"):
        TokenizerConfig(tile=32, f=8, patch_nums=(1, 2, 4, 8, 16, 20))


def test_ch_mult_must_have_one_level_per_halving():
    with pytest.raises(ValueError, match="ch_mult needs"):
        TokenizerConfig(tile=32, f=8, ch_mult=(1, 2, 2))


def test_tile_must_be_a_multiple_of_f():
    with pytest.raises(ValueError, match="multiple of f"):
        TokenizerConfig(tile=36, f=8)


def test_widths_must_divide_into_norm_groups():
    with pytest.raises(ValueError, match="norm_groups"):
        TokenizerConfig(ch=20, norm_groups=8)


def test_lpips_weight_without_local_weights_is_rejected():
    with pytest.raises(ValueError, match="lpips_path"):
        TokenizerConfig(lpips_weight=1.0)


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("huge")


def test_overrides_are_validated():
    with pytest.raises(ValueError):
        get_config("base", f=6)


def test_config_round_trips_through_a_dict():
    cfg = get_config("small", lr_guided_decoder=True)
    assert HVARConfig.from_dict(cfg.to_dict()) == cfg
