"""The patch critic and its losses: one logit per patch, hinge losses that stop at the margin, and a
balance that gives the adversarial term the reconstruction's gradient norm."""

import torch

from hvar.discriminator import PatchDiscriminator, adaptive_weight, d_hinge, g_hinge


def test_the_critic_scores_one_patch_per_eight_pixels_of_each_image():
    logits = PatchDiscriminator(width=8)(torch.rand(2, 3, 64, 96) * 2 - 1)
    assert logits.shape == (2, 1, 8, 12)


def test_the_critics_hinge_loss_is_zero_past_the_margin_and_grows_inside_it():
    sure = d_hinge(torch.full((4,), 2.0), torch.full((4,), -2.0))
    unsure = d_hinge(torch.zeros(4), torch.zeros(4))
    assert sure.item() == 0 and unsure.item() == 1


def test_the_decoders_adversarial_loss_falls_as_the_critic_rates_its_patches_more_real():
    assert g_hinge(torch.full((4,), 3.0)) < g_hinge(torch.full((4,), -3.0))


def test_the_balance_gives_the_adversarial_term_the_reconstructions_gradient_norm_at_the_last_layer():
    last = torch.nn.Parameter(torch.randn(5))
    rec = (last * 3).pow(2).sum()
    adv = (last * 0.1).sum()
    w = adaptive_weight(rec, adv, last)
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(w * adv, last)[0]
    assert torch.allclose(g_adv.norm(), g_rec.norm(), rtol=1e-3) and not w.requires_grad
