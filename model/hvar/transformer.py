"""The next-scale transformer of H-VAR: VAR's, conditioned on the LR image instead of a class label.

One sequence, in blocks ("levels") that attend block-causally (full attention inside a block):

    [ Nc condition tokens | start token | inputs of scale 1 | ... | inputs of scale K-1 ]
      level 0                level 1      level 2                   level K

* condition tokens: the frozen HIT encoding of the LR image (upsampled bilinearly to the HR size), a
  P x P latent (P = the largest patch side), through their own projection `cond_proj`;
* the start token predicts scale 0; the input of scale si >= 1 is the word embedding of the running
  sum after scale si-1 resized to pn_si x pn_si (`HIT.idx_to_next_scale_inputs`, continuous);
* every token gets its level embedding and a position from one learnable P x P table, area-resized (a
  fixed matrix) to its scale;
* the AdaLN condition of every block and of the head is a learned vector plus a projection of the
  condition latents averaged over positions.

Attention uses L2-normalised queries and keys with a learnable per-head scale (VAR's attn_l2_norm).
Inference state is explicit: `run(x, cond, cache=...)` takes the key/value cache of the lower levels
(a tuple of (k, v) per block, each B H n hd) and returns it extended; no module keeps any of it, so the
export can unroll the whole next-scale loop in one graph.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TokenizerConfig, TransformerConfig
from .resize import area_matrix, resize_with

KVCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]
MAX_ATTN_SCALE = math.log(100.0)  # VAR clamps the learnable log-scale here


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.log_scale_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), math.log(4.0)))

    def forward(
        self,
        x_BLC: torch.Tensor,
        mask_LL: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention of x's tokens over [cached keys, own keys]. mask_LL (bool, True = may attend) is
        for the teacher-forced pass; cached passes need none (every cached token is visible)."""
        B, L, C = x_BLC.shape
        q_BHLc, k_BHLc, v_BHLc = (
            self.qkv(x_BLC).view(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        )
        q_BHLc = F.normalize(q_BHLc, dim=-1) * self.log_scale_1H11.clamp(max=MAX_ATTN_SCALE).exp()
        k_BHLc = F.normalize(k_BHLc, dim=-1)
        if kv is not None:
            k_BHLc = torch.cat([kv[0], k_BHLc], dim=2)
            v_BHLc = torch.cat([kv[1], v_BHLc], dim=2)
        y_BHLc = F.scaled_dot_product_attention(q_BHLc, k_BHLc, v_BHLc, attn_mask=mask_LL, scale=1.0)
        return self.proj(y_BHLc.transpose(1, 2).reshape(B, L, C)), (k_BHLc, v_BHLc)


class FFN(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x_BLC: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x_BLC), approximate="tanh"))


class AdaLNBlock(nn.Module):
    """Pre-norm block whose norms are modulated by the condition: scales, shifts and residual gates."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.width = width
        self.ln = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.attn = SelfAttention(width, heads)
        self.ffn = FFN(width, round(width * mlp_ratio))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x_BLC, cond_BD, mask_LL=None, kv=None):
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (
            self.ada_lin(cond_BD).view(-1, 1, 6, self.width).unbind(2)
        )
        a_BLC, kv = self.attn(self.ln(x_BLC) * (1 + scale1) + shift1, mask_LL, kv)
        x_BLC = x_BLC + a_BLC * gamma1
        x_BLC = x_BLC + self.ffn(self.ln(x_BLC) * (1 + scale2) + shift2) * gamma2
        return x_BLC, kv


class AdaLNBeforeHead(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.ln = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x_BLC: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond_BD).view(-1, 1, 2, self.width).unbind(2)
        return self.ln(x_BLC) * (1 + scale) + shift


def block_causal_mask(levels_N: torch.Tensor) -> torch.Tensor:
    """(N, N) bool, True where query i may attend key j: key level <= query level."""
    return levels_N[None, :] <= levels_N[:, None]


class NextScaleTransformer(nn.Module):
    def __init__(self, tok: TokenizerConfig, cfg: TransformerConfig):
        super().__init__()
        self.cfg, self.tok = cfg, tok
        C, Cv, V = cfg.width, tok.cvae, tok.vocab_size
        self.patch_nums = tok.patch_nums
        self.side = tok.patch_nums[-1]  # P: the position table's side and the condition latent's side
        self.num_cond = self.side * self.side  # Nc
        self.num_tokens = tok.num_tokens  # L
        ends = list(itertools.accumulate(p * p for p in self.patch_nums))
        self.begin_ends = tuple(zip([0] + ends[:-1], ends, strict=True))  # token span of every scale

        self.cond_proj = nn.Linear(Cv, C)  # condition latents -> condition tokens
        self.cond_pool = nn.Linear(Cv, C)  # pooled condition latents -> AdaLN condition
        self.cond_vec_1D = nn.Parameter(torch.zeros(1, C))  # the learned part of the AdaLN condition
        self.word_embed = nn.Linear(Cv, C)  # continuous next-scale inputs -> tokens
        self.start_11C = nn.Parameter(torch.zeros(1, 1, C))
        self.level_embed = nn.Embedding(1 + len(self.patch_nums), C)  # 0 = condition, 1 + si = scale si
        self.pos_1CPP = nn.Parameter(torch.zeros(1, C, self.side, self.side))
        for pn in self.patch_nums[:-1]:
            self.register_buffer(f"area_{pn}", area_matrix(self.side, pn), persistent=False)
        levels_N = torch.tensor(
            [0] * self.num_cond + [1 + si for si, pn in enumerate(self.patch_nums) for _ in range(pn * pn)]
        )
        self.register_buffer("levels_N", levels_N, persistent=False)
        self.register_buffer("mask_NN", block_causal_mask(levels_N), persistent=False)

        self.blocks = nn.ModuleList(AdaLNBlock(C, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.head_nm = AdaLNBeforeHead(C)
        self.head = nn.Linear(C, V)
        if cfg.hint:  # TransformerConfig.hint; both start at zero: a hinted model starts as the plain one
            self.hint_embed = nn.Embedding(V, C)
            self.hint_gain_K = nn.Parameter(torch.zeros(len(self.patch_nums)))
        self.init_weights()

    # ---- embeddings -------------------------------------------------------------------------------------
    def pos_of(self, si: int) -> torch.Tensor:
        """Position table resized to scale si, as 1 x pn^2 x C."""
        pn = self.patch_nums[si]
        if pn == self.side:
            return self.pos_1CPP.flatten(2).transpose(1, 2)
        m = getattr(self, f"area_{pn}")
        return resize_with(self.pos_1CPP, m, m).flatten(2).transpose(1, 2)

    def embed_condition(self, f_BCvPP: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition latents (P x P) -> condition tokens x_BNcC and the AdaLN condition cond_BD."""
        f_BNcCv = f_BCvPP.flatten(2).transpose(1, 2)
        x_BNcC = self.cond_proj(f_BNcCv) + self.pos_of(len(self.patch_nums) - 1) + self.level_embed.weight[0]
        cond_BD = self.cond_vec_1D + self.cond_pool(f_BNcCv.mean(dim=1))
        return x_BNcC, cond_BD

    def embed_scale(
        self, si: int, x_next_BlCv: torch.Tensor | None, batch: int, hint_Bl: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens of scale si: the start token for si = 0, else the word embedding of its input; with a
        hint, plus the embedding of the hinted token at each position."""
        if si == 0:
            x_BlC = self.start_11C.expand(batch, 1, -1)
        else:
            x_BlC = self.word_embed(x_next_BlCv)
        x_BlC = x_BlC + self.pos_of(si) + self.level_embed.weight[1 + si]
        return x_BlC if hint_Bl is None else x_BlC + self.hint_embed(hint_Bl)

    def embed_targets(self, x_next_BlCv: torch.Tensor, hint_BL: torch.Tensor | None = None) -> torch.Tensor:
        """All target positions at once (teacher forcing): x_next holds the inputs of scales 1..K-1."""
        B = x_next_BlCv.shape[0]
        return torch.cat(
            [
                self.embed_scale(
                    si,
                    x_next_BlCv[:, b - 1 : e - 1] if si else None,
                    B,
                    None if hint_BL is None else hint_BL[:, b:e],
                )
                for si, (b, e) in enumerate(self.begin_ends)
            ],
            dim=1,
        )

    def hinted(self, logits_BlV: torch.Tensor, si: int, hint_Bl: torch.Tensor | None) -> torch.Tensor:
        """The logits with scale si's learned bonus on each position's hinted token."""
        if hint_Bl is None:
            return logits_BlV
        bonus_BlV = torch.zeros_like(logits_BlV).scatter_(-1, hint_Bl[..., None], 1.0)
        return logits_BlV + self.hint_gain_K[si] * bonus_BlV

    # ---- the blocks ---------------------------------------------------------------------------------------
    def run(
        self,
        x_BlC: torch.Tensor,
        cond_BD: torch.Tensor,
        mask_ll: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """All blocks on x's tokens, attending to the cached ones; returns hidden states and the cache
        extended by x's keys and values."""
        new_cache = []
        for n, block in enumerate(self.blocks):
            x_BlC, kv = block(x_BlC, cond_BD, mask_ll, None if cache is None else cache[n])
            new_cache.append(kv)
        return x_BlC, tuple(new_cache)

    def logits(self, h_BlC: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_nm(h_BlC, cond_BD)).float()

    def forward(
        self, f_BCvPP: torch.Tensor, x_next_BlCv: torch.Tensor, hint_BL: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing: condition latents (B) and next-scale inputs (r*B, L-1, Cv) -> logits_BLV for
        the r*B sequences; row i is conditioned on latent i % B (DPO passes [HR; LR] inputs, r = 2).
        hint_BL (B, L): the condition image's own tokens, with TransformerConfig.hint.

        The block-causal pass over [condition | targets] in two parts: the condition tokens attend only
        among themselves, so they run once per condition (not once per sequence), and the targets then
        attend to their keys and values with the target rows of the mask. Same result as one pass."""
        x_cond_BNcC, cond_BD = self.embed_condition(f_BCvPP)
        _, cache = self.run(x_cond_BNcC, cond_BD)
        r = x_next_BlCv.shape[0] // f_BCvPP.shape[0]
        if r > 1:
            cache = tuple((k.repeat(r, 1, 1, 1), v.repeat(r, 1, 1, 1)) for k, v in cache)
            cond_BD = cond_BD.repeat(r, 1)
        if hint_BL is not None and r > 1:
            hint_BL = hint_BL.repeat(r, 1)
        x_BLC = self.embed_targets(x_next_BlCv, hint_BL)
        h_BLC, _ = self.run(x_BLC, cond_BD, self.mask_NN[self.num_cond :], cache)
        logits_BLV = self.logits(h_BLC, cond_BD)
        if hint_BL is None:
            return logits_BLV
        return torch.cat(
            [
                self.hinted(logits_BLV[:, b:e], si, hint_BL[:, b:e])
                for si, (b, e) in enumerate(self.begin_ends)
            ],
            dim=1,
        )

    # ---- initialisation (VAR's init_weights) -----------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, init_adaln=0.5, init_adaln_gamma=1e-5, init_head=0.02) -> None:
        std = math.sqrt(1 / self.cfg.width / 3)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.trunc_normal_(m.weight, std=std)
        for p in (self.start_11C, self.pos_1CPP, self.cond_vec_1D):
            nn.init.trunc_normal_(p, std=std)
        if self.cfg.hint:
            nn.init.zeros_(self.hint_embed.weight)
        self.head.weight.mul_(init_head)
        self.head_nm.ada_lin[-1].weight.mul_(init_adaln)
        C, depth = self.cfg.width, len(self.blocks)
        for block in self.blocks:
            block.attn.proj.weight.div_(math.sqrt(2 * depth))
            block.ffn.fc2.weight.div_(math.sqrt(2 * depth))
            w = block.ada_lin[-1].weight
            w[2 * C :].mul_(init_adaln)  # scales and shifts
            w[: 2 * C].mul_(init_adaln_gamma)  # gates: every block starts close to the identity
