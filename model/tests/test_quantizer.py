import dataclasses

import torch
import torch.nn.functional as F

from hvar.config import PRESETS
from hvar.quantizer import MultiScaleQuantizer, phi_index

TINY = PRESETS["tiny"]
PLAIN_BASE = dataclasses.replace(PRESETS["base"], hierarchical=False)


def latents(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, cfg.cvae, s, s, generator=g) for s in cfg.segment_sides]


def random_quantizer(cfg, seed=0):
    torch.manual_seed(seed)
    q = MultiScaleQuantizer(cfg)
    torch.nn.init.normal_(q.embedding.weight)  # spread codes so every scale uses several
    return q


def var_reference_fhat_and_inputs(q, idx_list):
    """FoundationVision/VAR's idxBl_to_var_input / get_next_autoregressive_input with F.interpolate."""
    B, C, H = idx_list[0].shape[0], q.cvae, q.patch_nums[-1]
    SN = len(q.patch_nums)
    f_hat = torch.zeros(B, C, H, H)
    nexts = []
    for si, pn in enumerate(q.patch_nums):
        h = q.embedding(idx_list[si]).transpose(1, 2).reshape(B, C, pn, pn)
        if si != SN - 1:
            h = F.interpolate(h, size=(H, H), mode="bicubic")
        f_hat = f_hat + q.phis[q.phi_of_scale[si]](h)
        if si != SN - 1:
            pn_next = q.patch_nums[si + 1]
            nexts.append(
                F.interpolate(f_hat, size=(pn_next, pn_next), mode="area").flatten(2).transpose(1, 2)
            )
    return f_hat, torch.cat(nexts, 1)


def test_plain_quantizer_reproduces_vars_running_sum_and_next_scale_inputs():
    q = random_quantizer(PLAIN_BASE)
    idx = q(latents(PLAIN_BASE)).idx
    ref_fhat, ref_inputs = var_reference_fhat_and_inputs(q, idx)
    with torch.no_grad():
        torch.testing.assert_close(q.idx_to_fhats(idx)[-1], ref_fhat, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(q.idx_to_next_scale_inputs(idx), ref_inputs, atol=1e-5, rtol=1e-4)


def test_next_scale_inputs_have_one_row_per_token_after_the_first_scale():
    q = random_quantizer(TINY)
    idx = q(latents(TINY, batch=3)).idx
    x_BlC = q.idx_to_next_scale_inputs(idx)
    assert x_BlC.shape == (3, TINY.num_tokens - TINY.patch_nums[0] ** 2, TINY.cvae)


def test_stepwise_decoding_with_explicit_state_matches_teacher_forcing_inputs():
    q = random_quantizer(TINY)
    idx = q(latents(TINY)).idx
    fhat, steps = None, []
    for si in range(TINY.num_scales - 1):
        fhat = q.add_scale(si, fhat, q.lookup(idx[si], si))
        steps.append(q.next_input(si, fhat).flatten(2).transpose(1, 2))
    torch.testing.assert_close(torch.cat(steps, 1), q.idx_to_next_scale_inputs(idx))


def test_segment_partial_sums_live_at_each_segment_side():
    q = random_quantizer(TINY)
    fhats = q.idx_to_fhats(q(latents(TINY)).idx)
    assert [f.shape[-1] for f in fhats] == list(TINY.segment_ends)


def test_quantizer_chooses_the_nearest_code_in_l2():
    q = random_quantizer(TINY)
    x = torch.randn(50, TINY.cvae)
    assert torch.equal(q.nearest(x), torch.cdist(x, q.embedding.weight).argmin(1))


def test_straight_through_passes_the_decoder_gradient_to_the_encoder_unchanged():
    q = random_quantizer(TINY)
    f_list = [f.requires_grad_() for f in latents(TINY)]
    out = q(f_list)
    (out.fhat_st[-1] * 3.0).sum().backward()
    torch.testing.assert_close(f_list[-1].grad, torch.full_like(f_list[-1], 3.0))
    assert q.embedding.weight.grad is None  # the codebook learns from the VQ loss only


def test_vq_loss_trains_codebook_and_phi_and_commits_the_encoder():
    q = random_quantizer(TINY)
    f_list = [f.requires_grad_() for f in latents(TINY)]
    q(f_list).vq_loss.backward()
    assert q.embedding.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in q.phis.parameters())
    assert f_list[0].grad.abs().sum() > 0


def test_usage_counts_every_token_of_every_scale():
    q = random_quantizer(TINY)
    hits = q(latents(TINY, batch=4)).hits_SV
    assert hits.shape == (TINY.num_scales, TINY.vocab_size)
    assert hits.sum(1).tolist() == [4 * p * p for p in TINY.patch_nums]


def test_dead_codes_are_reseeded_from_encoder_features():
    q = random_quantizer(TINY)
    hits = torch.ones(TINY.vocab_size)
    hits[[3, 7]] = 0
    feats = torch.full((5, TINY.cvae), 42.0)
    before = q.embedding.weight.detach().clone()
    assert q.reinit_dead_codes(hits, feats) == 2
    after = q.embedding.weight.detach()
    assert torch.all(after[[3, 7]] == 42.0)
    keep = torch.ones(TINY.vocab_size, dtype=torch.bool)
    keep[[3, 7]] = False
    assert torch.equal(after[keep], before[keep])


def test_phis_are_shared_coarse_to_fine_as_in_var():
    # VAR's 10-scale list with 4 shared Phis: ticks linspace(1/12, 11/12, 4), each scale takes the tick
    # nearest to si/9 (si=2 and si=7 are float ties; numpy's argmin over VAR's ticks decides as here).
    assert [phi_index(si, 10, 4) for si in range(10)] == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert phi_index(0, 13, 4) == 0 and phi_index(12, 13, 4) == 3
