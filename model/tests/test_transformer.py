import dataclasses

import pytest
import torch
import torch.nn.functional as F
from tiny_models import images, random_hvar

from hvar.config import PRESETS, TRANSFORMER_PRESETS, get_config
from hvar.resize import area_half
from hvar.sr import HVAR, bilinear_matrix, load_hvar, save_hvar
from hvar.transformer import NextScaleTransformer


def lr_of(hr):
    return area_half(area_half(hr))


def test_block_causal_mask_condition_sees_itself_and_each_scale_sees_itself_and_below():
    tr = random_hvar().transformer
    nc, ends = tr.num_cond, [0] + [e for _, e in tr.begin_ends]
    mask = tr.mask_NN
    assert mask.shape == (nc + tr.num_tokens,) * 2
    assert mask[:nc, :nc].all() and not mask[:nc, nc:].any()  # condition: bidirectional, no peeking
    for si, (b, e) in enumerate(tr.begin_ends):
        rows = mask[nc + b : nc + e]
        assert rows[:, : nc + e].all(), f"scale {si} must see the condition, earlier scales and itself"
        assert not rows[:, nc + e :].any(), f"scale {si} must not see later scales"
    assert ends[-1] == tr.num_tokens


def test_logits_of_a_scale_do_not_depend_on_inputs_of_later_scales():
    model = random_hvar()
    hr = images(model.cfg)
    with torch.no_grad():
        x_next, _ = model.teacher_inputs(model.tokenizer.img_to_idx(hr))
        f = model.condition(lr_of(hr))
        a = model.transformer(f, x_next)
        b_, e_ = model.transformer.begin_ends[3]
        x2 = x_next.clone()
        x2[:, b_ - 1 :] += 1.0  # change the inputs of scales 3.. only
        b = model.transformer(f, x2)
    torch.testing.assert_close(a[:, :b_], b[:, :b_], rtol=0, atol=0)
    assert (a[:, b_:] - b[:, b_:]).abs().max() > 1e-3


def test_kv_cache_inference_reproduces_teacher_forced_logits():
    model = random_hvar()
    hr = images(model.cfg, batch=3)
    with torch.no_grad():
        idx = model.tokenizer.img_to_idx(hr)
        x_next, _ = model.teacher_inputs(idx)
        teacher = model.transformer(model.condition(lr_of(hr)), x_next)
        cached = model.teacher_forced_logits_by_cache(lr_of(hr), idx)
    assert teacher.shape == (3, model.cfg.tokenizer.num_tokens, model.cfg.tokenizer.vocab_size)
    assert teacher.std() > 0.1  # the check is not vacuous
    torch.testing.assert_close(cached, teacher, rtol=0, atol=1e-5)


def test_two_part_teacher_forcing_equals_one_block_causal_pass_and_shares_the_condition():
    model = random_hvar()
    tr = model.transformer
    hr = images(model.cfg, batch=2)
    with torch.no_grad():
        x_next, _ = model.teacher_inputs(model.tokenizer.img_to_idx(hr))
        f = model.condition(lr_of(hr))
        x_cond, cond = tr.embed_condition(f)
        h, _ = tr.run(torch.cat([x_cond, tr.embed_targets(x_next)], 1), cond, tr.mask_NN)  # one pass
        one_pass = tr.logits(h[:, tr.num_cond :], cond)
        two_part = tr(f, x_next)
        x_pair = torch.cat([x_next, x_next.flip(0)])  # [HR; LR]-style batch: 2 sequences per condition
        shared = tr(f, x_pair)
        duplicated = tr(torch.cat([f, f]), x_pair)
    torch.testing.assert_close(two_part, one_pass, rtol=0, atol=1e-5)
    torch.testing.assert_close(shared, duplicated, rtol=0, atol=1e-5)


def test_greedy_generation_is_deterministic_and_ignores_the_noise():
    model = random_hvar(spread=0.1)
    lr = lr_of(images(model.cfg))
    L = model.cfg.tokenizer.num_tokens
    with torch.no_grad():
        idx_a, img_a = model.generate(lr, torch.rand(2, L), 0.0)
        idx_b, img_b = model.generate(lr.clone(), torch.rand(2, L), 0.0)
    assert all(torch.equal(a, b) for a, b in zip(idx_a, idx_b, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(img_a, img_b, strict=True))


def test_sampling_is_reproducible_from_the_noise_and_changes_with_it():
    model = random_hvar(spread=0.1)
    lr = lr_of(images(model.cfg))
    L = model.cfg.tokenizer.num_tokens
    u = torch.rand(2, L, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([1.0])
    with torch.no_grad():
        a = torch.cat(model.generate(lr, u, t)[0], 1)
        b = torch.cat(model.generate(lr, u.clone(), t)[0], 1)
        c = torch.cat(model.generate(lr, torch.rand(2, L), t)[0], 1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_prior_is_kept_wherever_the_transformer_is_less_sure_than_the_confidence():
    model = random_hvar(spread=0.1)
    lr = lr_of(images(model.cfg))
    with torch.no_grad():
        prior = model.tokenizer.img_to_idx(images(model.cfg))
        free = torch.cat(model.generate(lr)[0], 1)
        never = torch.cat(model.generate(lr, prior=prior, confidence=0.0)[0], 1)
        always = torch.cat(model.generate(lr, prior=prior, confidence=1.0)[0], 1)
        c = float(
            torch.softmax(model.teacher_forced_logits_by_cache(lr, model.generate(lr)[0]), -1)
            .amax(-1)
            .median()
        )
        some_list = model.generate(lr, prior=prior, confidence=c)[0]
        p_BLV = torch.softmax(model.teacher_forced_logits_by_cache(lr, some_list), dim=-1)
    flat, some = torch.cat(prior, 1), torch.cat(some_list, 1)
    assert torch.equal(never, free) and torch.equal(always, flat) and not torch.equal(free, flat)
    sure = p_BLV.amax(-1) >= c  # given the tokens before it, as generation saw them
    assert 0 < sure.float().mean() < 1
    assert torch.equal(some[sure], p_BLV.argmax(-1)[sure]) and torch.equal(some[~sure], flat[~sure])


@pytest.mark.parametrize(
    "tokenizer", [{}, {"hierarchical": False}, {"lr_guided_decoder": True}], ids=["hit", "plain", "lr-guided"]
)
def test_onnx_contract_forward_gives_x1_x2_x4_in_zero_one_and_the_tokens_drawn(tokenizer):
    model = random_hvar(spread=0.1, tokenizer=tokenizer)
    cfg = model.cfg.tokenizer
    lr01, noise = torch.rand(2, 3, cfg.tile, cfg.tile), torch.rand(2, cfg.num_tokens)
    with torch.no_grad():
        x1, x2, x4, tokens = model(lr01, noise, torch.tensor([0.0]))
        idx_list, _ = model.generate(lr01 * 2 - 1, noise, 0.0)
    assert [tuple(x.shape) for x in (x1, x2, x4)] == [(2, 3, s, s) for s in cfg.image_sides]
    assert all(x.min() >= 0 and x.max() <= 1 for x in (x1, x2, x4))
    assert tokens.dtype == torch.int64 and torch.equal(tokens, torch.cat(idx_list, dim=1))


def test_bilinear_matrix_equals_torch_bilinear_upsampling():
    x = torch.rand(2, 3, 16, 16)
    m = bilinear_matrix(16, 64)
    ref = F.interpolate(x, size=64, mode="bilinear", align_corners=False)
    torch.testing.assert_close(m @ x @ m.T, ref, rtol=0, atol=1e-5)


def test_var_init_starts_every_block_near_the_identity():
    torch.manual_seed(0)
    tr = NextScaleTransformer(PRESETS["tiny"], TRANSFORMER_PRESETS["tiny"])
    gates = tr.blocks[0].ada_lin[-1].weight[: 2 * tr.cfg.width]
    assert gates.abs().max() < 1e-4 and tr.head.weight.std() < 0.01


def test_run_folder_round_trip_gives_the_same_tokens(tmp_path):
    model = random_hvar(spread=0.1)
    save_hvar(model, tmp_path)
    loaded = load_hvar(tmp_path)
    assert loaded.cfg == model.cfg
    lr = lr_of(images(model.cfg))
    with torch.no_grad():
        a, b = model.generate(lr)[0], loaded.generate(lr)[0]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("preset", ["tiny", "base", "small", "paper"])
def test_shapes_for_every_preset(preset):
    """On the meta device: logits shape and the parameter count without allocating."""
    cfg = get_config(preset)
    tok = cfg.tokenizer
    with torch.device("meta"):
        tr = NextScaleTransformer(tok, cfg.transformer)
        f = torch.empty(2, tok.cvae, tok.patch_nums[-1], tok.patch_nums[-1])
        logits = tr(f, torch.empty(2, tok.num_tokens - 1, tok.cvae))
    assert tuple(logits.shape) == (2, tok.num_tokens, tok.vocab_size)
    assert sum(p.numel() for p in tr.parameters()) > 0


def test_transformer_config_round_trips_and_is_validated():
    cfg = get_config("base")
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="dpo_mode"):
        dataclasses.replace(cfg.transformer, dpo_mode="bogus")


def test_an_image_already_at_the_hr_side_is_encoded_as_it_is_and_an_lr_tile_upsampled_first():
    model = random_hvar(spread=0.1, condition="x4")
    hr = images(model.cfg)
    tok = model.tokenizer
    with torch.no_grad():
        assert torch.equal(model.condition(hr), tok.quant_conv(tok.encoder(hr)))
        lr = lr_of(hr)
        assert torch.equal(model.condition(lr), tok.quant_conv(tok.encoder(model.upsample_lr(lr))))
        assert model.upsample_lr(lr).shape == hr.shape


def hinted(seed: int = 0) -> HVAR:
    """A tiny hinted H-VAR whose hint parts are no longer zero."""
    model = random_hvar(seed, hint=True)
    with torch.no_grad():
        model.transformer.hint_embed.weight.normal_(0, 0.3)
        model.transformer.hint_gain_K.fill_(2.0)
    return model


def test_a_hinted_transformer_starts_as_the_plain_one():
    plain, hint = random_hvar(), random_hvar(hint=True, spread=0)  # spread 0: the hint parts as built
    assert set(hint.load_state_dict(plain.state_dict(), strict=False).missing_keys) == {
        "transformer.hint_embed.weight",
        "transformer.hint_gain_K",
    }
    lr = lr_of(images(plain.cfg))
    with torch.no_grad():
        a, b = plain.generate(lr)[0], hint.generate(lr)[0]
        la = plain.teacher_forced_logits_by_cache(lr, a)
        lb = hint.teacher_forced_logits_by_cache(lr, a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and torch.equal(la, lb)


def test_the_hinted_token_gets_the_scales_bonus_on_its_logit():
    model = hinted()
    hr = images(model.cfg)
    with torch.no_grad():
        x_next, _ = model.teacher_inputs(model.tokenizer.img_to_idx(hr))
        f, own = model.condition_and_lr_tokens(lr_of(hr))
        hint_BL = torch.cat(own, 1)
        with_gain = model.transformer(f, x_next, hint_BL)
        model.transformer.hint_gain_K.zero_()
        without = model.transformer(f, x_next, hint_BL)
    bonus = (with_gain - without).gather(-1, hint_BL[..., None])[..., 0]
    torch.testing.assert_close(bonus, torch.full_like(bonus, 2.0))
    assert torch.equal((with_gain - without).abs().sum(-1), bonus.abs())  # on no other token


def test_kv_cache_inference_reproduces_teacher_forced_logits_with_a_hint():
    model = hinted()
    hr = images(model.cfg, batch=3)
    lr = lr_of(hr)
    with torch.no_grad():
        idx = model.tokenizer.img_to_idx(hr)
        x_next, _ = model.teacher_inputs(idx)
        f, own = model.condition_and_lr_tokens(lr)
        teacher = model.transformer(f, x_next, torch.cat(own, 1))
        cached = model.teacher_forced_logits_by_cache(lr, idx)
        unhinted = model.transformer(f, x_next)
    torch.testing.assert_close(cached, teacher, rtol=0, atol=1e-5)
    assert (teacher - unhinted).abs().max() > 1e-2  # the hint is used


def test_a_model_conditioned_on_an_image_at_the_hr_side_guides_its_decoder_with_that_image_brought_down():
    model = random_hvar(spread=0.1, condition="x4", tokenizer={"lr_guided_decoder": True})
    hr = images(model.cfg)
    with torch.no_grad():
        _, imgs = model.generate(hr)
    assert [tuple(im.shape[-2:]) for im in imgs] == [(s, s) for s in model.cfg.tokenizer.image_sides]
