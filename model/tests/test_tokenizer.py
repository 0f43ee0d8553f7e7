import dataclasses

import pytest
import torch

from hvar.config import PRESETS, get_config
from hvar.resize import area_half
from hvar.tokenizer import HIT, load_hit, save_hit, tokenizer_loss

TINY = PRESETS["tiny"]


def images(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, cfg.hr_tile, cfg.hr_tile, generator=g) * 2 - 1


def random_hit(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    model = HIT(cfg).eval()
    torch.nn.init.normal_(model.quantizer.embedding.weight, std=0.5)  # spread codes: non-trivial tokens
    return model


@pytest.fixture(scope="module")
def trained_tiny():
    """HIT tiny after a short training on smooth random images (seconds)."""
    torch.manual_seed(1)
    model = HIT(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(25):
        x = (
            torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=g), size=64, mode="bilinear") * 2
            - 1
        )
        out = model(x, bypass_B=torch.rand(4, generator=g) < 0.5)
        loss, logs = tokenizer_loss(out, TINY)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["rec"])
    return model.eval(), losses


def assert_token_overlap(model, hr):
    full = model.img_to_idx(hr)
    x2 = area_half(hr)
    x1 = area_half(x2)
    n1, n2 = (len(model.cfg.segments[0]), len(model.cfg.segments[0]) + len(model.cfg.segments[1]))
    tok_x1, tok_x2 = model.img_to_idx(x1), model.img_to_idx(x2)
    assert len(tok_x1) == n1 and len(tok_x2) == n2
    assert all(torch.equal(a, b) for a, b in zip(tok_x1, full[:n1], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(tok_x2, full[:n2], strict=True))


def test_tokens_of_x1_and_x2_images_are_exactly_the_first_segments_of_the_full_tokens():
    model = random_hit()
    assert_token_overlap(model, images(TINY, batch=3))


def test_token_overlap_still_holds_after_training(trained_tiny):
    model, _ = trained_tiny
    assert_token_overlap(model, images(TINY, batch=3, seed=5))


def test_short_training_lowers_reconstruction_loss(trained_tiny):
    _, losses = trained_tiny
    assert sum(losses[-5:]) < sum(losses[:5])


def test_each_segment_partial_sum_decodes_to_that_segments_image_size():
    model = random_hit()
    with torch.no_grad():
        imgs = model.idx_to_imgs(model.img_to_idx(images(TINY)))
    assert [tuple(im.shape) for im in imgs] == [(2, 3, s, s) for s in TINY.image_sides]


def test_an_x2_image_decodes_to_x1_and_x2_sizes_only():
    model = random_hit()
    with torch.no_grad():
        imgs = model.idx_to_imgs(model.img_to_idx(area_half(images(TINY))))
    assert [im.shape[-1] for im in imgs] == list(TINY.image_sides[:2])


def test_encode_then_decode_is_deterministic():
    model = random_hit()
    x = images(TINY)
    with torch.no_grad():
        a = model.idx_to_imgs(model.img_to_idx(x))
        b = model.idx_to_imgs(model.img_to_idx(x.clone()))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_decoded_images_stay_in_minus_one_to_one():
    model = random_hit()
    with torch.no_grad():
        imgs = model.idx_to_imgs(model.img_to_idx(images(TINY)))
    assert all(im.min() >= -1 and im.max() <= 1 for im in imgs)


def test_training_forward_decodes_every_segment_against_the_area_pyramid():
    model = random_hit()
    x = images(TINY)
    out = model(x)
    assert [r.shape[-1] for r in out.recons] == list(TINY.image_sides)
    assert torch.equal(out.targets[0], area_half(area_half(x)))


def test_quantizer_bypass_decodes_the_continuous_latent():
    model = random_hit()
    x = images(TINY)
    with torch.no_grad():
        bypassed = model(x, bypass_B=torch.tensor([True, False]))
        f_top = model.encode(x)[-1]
        direct = model.decoder(model.post_quant_conv(f_top))
        quantized = model(x)
    torch.testing.assert_close(bypassed.recons[-1][0], direct[0])
    torch.testing.assert_close(bypassed.recons[-1][1], quantized.recons[-1][1])


def test_plain_tokenizer_decodes_every_partial_sum_at_full_size():
    cfg = dataclasses.replace(TINY, hierarchical=False)
    model = random_hit(cfg)
    with torch.no_grad():
        imgs = model.idx_to_imgs(model.img_to_idx(images(cfg)))
    assert [im.shape[-1] for im in imgs] == [cfg.hr_tile] * 3
    out = model(images(cfg))
    assert out.recons[:2] == [None, None] and out.recons[2].shape[-1] == cfg.hr_tile


def test_plain_tokenizer_rejects_images_smaller_than_the_hr_tile():
    model = random_hit(dataclasses.replace(TINY, hierarchical=False))
    with pytest.raises(ValueError, match="plain"):
        model.img_to_idx(area_half(images(TINY)))


def test_images_that_are_not_a_segment_size_are_rejected():
    with pytest.raises(ValueError, match="square tiles"):
        random_hit().img_to_idx(torch.zeros(1, 3, 40, 40))


def test_lr_guided_decoder_starts_as_the_unguided_decoder_and_needs_the_lr_image():
    torch.manual_seed(0)
    guided = HIT(dataclasses.replace(TINY, lr_guided_decoder=True)).eval()
    torch.manual_seed(0)
    plain = HIT(TINY).eval()
    plain.load_state_dict(guided.state_dict(), strict=False)
    x = images(TINY)
    lr = area_half(area_half(x))
    with torch.no_grad():
        idx = guided.img_to_idx(x)
        a = guided.idx_to_imgs(idx, lr)
        b = plain.idx_to_imgs(idx)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="LR-guided"):
        guided.idx_to_imgs(idx)


def test_checkpoint_round_trip_gives_the_same_tokens(tmp_path):
    model = random_hit()
    save_hit(model, get_config("tiny"), tmp_path)
    loaded, cfg = load_hit(tmp_path)
    assert cfg.tokenizer == TINY
    x = images(TINY)
    assert all(
        torch.equal(a, b) for a, b in zip(model.img_to_idx(x), loaded.eval().img_to_idx(x), strict=True)
    )


@pytest.mark.parametrize("preset", ["tiny", "base", "small", "paper"])
@pytest.mark.parametrize("hierarchical", [True, False])
def test_shapes_for_every_preset(preset, hierarchical):
    """Built on the meta device: shapes and parameter counts without allocating (paper is ~100M)."""
    cfg = dataclasses.replace(PRESETS[preset], hierarchical=hierarchical, lr_guided_decoder=hierarchical)
    with torch.device("meta"):
        model = HIT(cfg)
        hr = torch.empty(2, 3, cfg.hr_tile, cfg.hr_tile)
        lr = torch.empty(2, 3, cfg.tile, cfg.tile)
        f_list = model.encode(hr)
        idx = [torch.zeros(2, p * p, dtype=torch.long) for p in cfg.patch_nums]
        fhats = model.idx_to_fhats(idx)
        imgs = [model.fhat_to_img(f, lr) for f in fhats]
        inputs = model.idx_to_next_scale_inputs(idx)
    assert [f.shape[-1] for f in f_list] == list(cfg.segment_sides)
    assert all(f.shape[1] == cfg.cvae for f in f_list)
    assert [f.shape[-1] for f in fhats] == list(cfg.segment_sides)
    assert [im.shape[-1] for im in imgs] == list(cfg.decode_sides)
    assert tuple(inputs.shape) == (2, cfg.num_tokens - 1, cfg.cvae)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_same_tokens_ignores_the_decoder_but_not_the_encoder_or_codebook():
    a, b = random_hit(), random_hit()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.decoder.conv_out.weight.add_(1.0)
        assert a.same_tokens_as(b)
        b.quantizer.embedding.weight.add_(1.0)
    assert not a.same_tokens_as(b)
