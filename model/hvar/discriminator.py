"""A patch discriminator and the hinge GAN loss, for a decoder that must draw detail and not its average.

An L1-trained decoder given ambiguous tokens draws their mean: a soft picture whose NIQE is worse than
the floor's even with the HR image's tokens (`checkpoints/detail-base`). The fix VQGAN (Esser et al.
2021) and the SR GANs use is an adversarial term: a small convolutional critic scores overlapping
patches as real (HR) or decoded, and the decoder is pushed towards patches it cannot tell apart.

    PatchDiscriminator(width, layers)(img B 3 H W) -> logits B 1 H/2^layers W/2^layers
    d_hinge(real_logits, fake_logits)   the critic's loss
    g_hinge(fake_logits)                the decoder's loss
    adaptive_weight(rec, adv, last)     VQGAN's balance: |grad rec| / |grad adv| at the decoder's last layer

The critic is pix2pix's N-layer PatchGAN with spectral normalisation instead of batch norm (as
Real-ESRGAN's critic): stable from scratch at batch 8, and no batch statistics to mix real and fake.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, layers):
            c_next = width * min(2**i, 8)
            blocks += [spectral_norm(nn.Conv2d(c, c_next, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c = c_next
        blocks += [spectral_norm(nn.Conv2d(c, c, 3, 1, 1)), nn.LeakyReLU(0.2), nn.Conv2d(c, 1, 3, 1, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, img_B3HW: torch.Tensor) -> torch.Tensor:
        return self.net(img_B3HW)  # B 1 H/2^layers W/2^layers: one logit per overlapping patch


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def adaptive_weight(rec: torch.Tensor, adv: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """The adversarial term's weight that gives it the reconstruction's gradient norm at `last` (VQGAN):
    the balance holds whatever the loss scales, and moves as the critic learns."""
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach()
