"""VAR's multi-scale residual quantizer, organised in segments for HIT.

One shared codebook quantizes a latent coarse to fine: at scale si the residual is area-downsampled to
pn x pn, each vector takes its nearest code (L2), the code map is bicubic-upsampled back, passed
through Phi (Phi(h) = 0.5 h + 0.5 conv(h)) and added to the running sum fhat.

HIT splits the patch list into segments; segment n works on a latent of side `segment_sides[n]` and
starts from the previous segment's fhat carried (bicubic) to that side. The plain VAR quantizer is the
special case where every segment has the full side and the carry is the identity, so one class serves
both. All resizes are fixed matrices (`hvar.resize`), all loops run over the static patch list, and the
running sum is passed in and out explicitly: nothing here keeps inference state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TokenizerConfig
from .resize import area_matrix, bicubic_matrix, resize_with


class Phi(nn.Conv2d):
    """Phi(h) = (1 - r) h + r conv3x3(h): lets each scale's code map be refined, as in VAR."""

    def __init__(self, cvae: int, resi_ratio: float):
        super().__init__(cvae, cvae, kernel_size=3, stride=1, padding=1)
        self.resi_ratio = abs(resi_ratio)

    def forward(self, h_BChw: torch.Tensor) -> torch.Tensor:
        return h_BChw * (1 - self.resi_ratio) + super().forward(h_BChw) * self.resi_ratio


def phi_ticks(k: int) -> np.ndarray:
    """VAR's PhiPartiallyShared ticks: where on [0, 1] each of the k shared Phis sits."""
    if k == 4:
        return np.linspace(1 / 3 / k, 1 - 1 / 3 / k, k)
    return np.linspace(1 / 2 / k, 1 - 1 / 2 / k, k)


def phi_index(si: int, num_scales: int, k: int) -> int:
    """Which shared Phi scale si uses: the tick nearest to si / (num_scales - 1)."""
    at = si / (num_scales - 1) if num_scales > 1 else 0.0
    return int(np.argmin(np.abs(phi_ticks(k) - at)))


@dataclass
class QuantOut:
    fhat_st: list[torch.Tensor]  # per segment: quantized latent, straight-through to the encoder
    idx: list[torch.Tensor]  # per scale: idx_Bl, l = pn * pn
    vq_loss: torch.Tensor  # VAR's loss: beta * commitment + codebook, averaged over scales
    hits_SV: torch.Tensor  # per scale: how often each code was chosen (for usage and dead codes)
    rest_NC: torch.Tensor  # detached residual vectors seen by the quantizer (to re-seed dead codes)


class MultiScaleQuantizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.vocab_size, self.cvae, self.beta = cfg.vocab_size, cfg.cvae, cfg.beta
        self.patch_nums = cfg.patch_nums
        self.sides = cfg.segment_sides  # latent side of each segment
        self.scale_segment = cfg.scale_segment
        self.num_scales = cfg.num_scales
        # Last scale index of each segment (where a partial sum is complete and decodable).
        self.segment_last = tuple(
            max(si for si in range(self.num_scales) if self.scale_segment[si] == n)
            for n in range(len(self.sides))
        )
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.cvae)
        nn.init.uniform_(self.embedding.weight, -1.0 / cfg.vocab_size, 1.0 / cfg.vocab_size)
        self.phis = nn.ModuleList(Phi(cfg.cvae, cfg.quant_resi) for _ in range(cfg.share_quant_resi))
        self.phi_of_scale = tuple(
            phi_index(si, self.num_scales, cfg.share_quant_resi) for si in range(self.num_scales)
        )
        # Every resize the quantizer can need, as fixed matrices (non-persistent: derived from config).
        pairs = set()
        for si, pn in enumerate(self.patch_nums):
            side = self.sides[self.scale_segment[si]]
            pairs |= {("area", side, pn), ("bicubic", pn, side)}
        for a, b in zip(self.sides, self.sides[1:], strict=False):
            pairs.add(("bicubic", a, b))
        for kind, a, b in sorted(pairs):
            if a != b:
                m = area_matrix(a, b) if kind == "area" else bicubic_matrix(a, b)
                self.register_buffer(f"{kind}_{a}_{b}", m, persistent=False)

    # ---- resizes ----------------------------------------------------------------------------------------
    def _resize(self, kind: str, x_BChw: torch.Tensor, n_out: int) -> torch.Tensor:
        n_in = x_BChw.shape[-1]
        if n_in == n_out:
            return x_BChw
        m = getattr(self, f"{kind}_{n_in}_{n_out}")
        return resize_with(x_BChw, m, m)

    def carry(self, fhat_BChw: torch.Tensor, n: int) -> torch.Tensor:
        """Running sum of segment n-1 moved to segment n's latent side (bicubic; identity for plain)."""
        return self._resize("bicubic", fhat_BChw, self.sides[n])

    # ---- codebook ------------------------------------------------------------------------------------------
    def nearest(self, x_NC: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code in L2 for each row."""
        e_VC = self.embedding.weight.detach()
        d_NV = x_NC.square().sum(1, keepdim=True) + e_VC.square().sum(1) - 2 * x_NC @ e_VC.t()
        return d_NV.argmin(dim=1)

    def lookup(self, idx_Bl: torch.Tensor, si: int) -> torch.Tensor:
        """Token indices of scale si -> their code map h_BCpp (pn x pn, no resize, no Phi)."""
        pn = self.patch_nums[si]
        return self.embedding(idx_Bl).transpose(1, 2).reshape(idx_Bl.shape[0], self.cvae, pn, pn)

    def add_scale(self, si: int, fhat_BChw: torch.Tensor | None, h_BCpp: torch.Tensor) -> torch.Tensor:
        """Running sum after scale si: carry to the segment side when si opens a segment, then add
        Phi(bicubic-upsampled code map). Pass fhat=None for si=0."""
        n = self.scale_segment[si]
        side = self.sides[n]
        if fhat_BChw is None:
            fhat_BChw = h_BCpp.new_zeros(h_BCpp.shape[0], self.cvae, side, side)
        elif si > 0 and self.scale_segment[si - 1] != n:
            fhat_BChw = self.carry(fhat_BChw, n)
        h_BChw = self.phis[self.phi_of_scale[si]](self._resize("bicubic", h_BCpp, side))
        return fhat_BChw + h_BChw

    def next_input(self, si: int, fhat_BChw: torch.Tensor) -> torch.Tensor:
        """Transformer input for scale si+1 given the running sum after scale si: the sum (carried to the
        next segment's side if si ends a segment) area-resized to pn_{si+1} (VAR's
        get_next_autoregressive_input). For the last scale, the running sum itself."""
        if si == self.num_scales - 1:
            return fhat_BChw
        n_next = self.scale_segment[si + 1]
        if n_next != self.scale_segment[si]:
            fhat_BChw = self.carry(fhat_BChw, n_next)
        return self._resize("area", fhat_BChw, self.patch_nums[si + 1])

    # ---- token-level API -----------------------------------------------------------------------------------
    def idx_to_fhats(self, idx_list: list[torch.Tensor]) -> list[torch.Tensor]:
        """Token lists (a prefix of whole segments) -> running sum at each completed segment's end."""
        fhat, out = None, []
        for si, idx_Bl in enumerate(idx_list):
            fhat = self.add_scale(si, fhat, self.lookup(idx_Bl, si))
            if si in self.segment_last:
                out.append(fhat)
        return out

    def idx_to_next_scale_inputs(self, idx_list: list[torch.Tensor]) -> torch.Tensor:
        """Teacher-forcing input of the transformer (VAR's idxBl_to_var_input): for scales 1..K-1 of the
        given K scales, the running sum before that scale resized to its patch size, as x_BlC with
        l = sum(pn^2 for scales 1..K-1)."""
        fhat, nexts = None, []
        for si in range(len(idx_list) - 1):
            fhat = self.add_scale(si, fhat, self.lookup(idx_list[si], si))
            nexts.append(self.next_input(si, fhat).flatten(2).transpose(1, 2))
        return torch.cat(nexts, dim=1)

    # ---- training / encoding ----------------------------------------------------------------------------
    def forward(self, f_list: list[torch.Tensor]) -> QuantOut:
        """Quantize one latent per segment (a prefix of segments is allowed: an x1 image has one).

        HIT passes the encoding of the image at each segment's size; plain VAR passes the same
        full-size latent for every segment."""
        fhat, idx, fhat_st, rests, hits = None, [], [], [], []
        vq_loss = 0.0
        n_scales = 0
        for n, f_BChw in enumerate(f_list):
            side = self.sides[n]
            if f_BChw.shape[-1] != side or f_BChw.shape[-2] != side:
                raise ValueError(f"segment {n} expects a {side}x{side} latent, got {tuple(f_BChw.shape)}")
            f_nograd = f_BChw.detach()
            fhat_start = None if fhat is None else self.carry(fhat, n)
            f_rest = f_nograd if fhat_start is None else f_nograd - fhat_start.detach()
            fhat = fhat_start
            for si in (s for s in range(self.num_scales) if self.scale_segment[s] == n):
                pn = self.patch_nums[si]
                rest_NC = self._resize("area", f_rest, pn).permute(0, 2, 3, 1).reshape(-1, self.cvae)
                idx_N = self.nearest(rest_NC)
                idx_Bl = idx_N.view(f_BChw.shape[0], pn * pn)
                fhat_prev = fhat
                # fhat is already at this segment's side, so add_scale's carry is the identity here.
                fhat = self.add_scale(si, fhat, self.lookup(idx_Bl, si))
                h_BChw = fhat if fhat_prev is None else fhat - fhat_prev
                f_rest = f_rest - h_BChw.detach()
                vq_loss = vq_loss + self.beta * F.mse_loss(fhat.detach(), f_BChw) + F.mse_loss(fhat, f_nograd)
                idx.append(idx_Bl)
                rests.append(rest_NC)
                hits.append(torch.bincount(idx_N, minlength=self.vocab_size))
                n_scales += 1
            # Straight-through: the decoder sees the quantized value, the encoder gets its gradient.
            fhat_st.append((fhat.detach() - f_nograd) + f_BChw)
        return QuantOut(
            fhat_st=fhat_st,
            idx=idx,
            vq_loss=vq_loss / n_scales,
            hits_SV=torch.stack(hits),
            rest_NC=torch.cat(rests).detach(),
        )

    @torch.no_grad()
    def reinit_dead_codes(self, hits_V: torch.Tensor, feats_NC: torch.Tensor, generator=None) -> int:
        """Re-seed every code with zero hits from random encoder residual vectors (against collapse).
        Returns how many codes were re-seeded."""
        dead = (hits_V == 0).nonzero().flatten()
        if dead.numel() == 0 or feats_NC.shape[0] == 0:
            return 0
        pick = torch.randint(0, feats_NC.shape[0], (dead.numel(),), generator=generator)
        self.embedding.weight[dead.to(self.embedding.weight.device)] = feats_NC[pick].to(
            self.embedding.weight
        )
        return int(dead.numel())
