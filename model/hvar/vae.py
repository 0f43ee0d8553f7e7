"""The convolutional encoder and decoder of HIT, after VAR's `basic_vae.py` (itself after taming/LDM).

GroupNorm + SiLU residual blocks, one stride-2 conv per downsampling level, nearest x2 + conv per
upsampling level, and a middle block with one self-attention layer. Both are fully convolutional, so
one decoder turns a latent of any side s into an image of side s * f: that is what lets every HIT
segment decode at its own size. Images are in [-1, 1].

Optional (`lr_guided_decoder`): the decoder also receives the LR image, resized to each decoder
resolution by a fixed matrix and added through a zero-initialised conv branch (a skip connection), so
the tokens can spend their bits on detail the LR image does not already hold.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TokenizerConfig
from .resize import area_matrix, bicubic_matrix, resize_with


def norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x_BChw: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x_BChw)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x_BChw) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all h*w positions (only used at the coarsest resolution)."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = norm(c, groups)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x_BChw: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x_BChw.shape
        q, k, v = self.qkv(self.norm(x_BChw)).reshape(B, 3, C, H * W).unbind(1)  # each B C hw
        attn_Bll = torch.softmax(q.transpose(1, 2) @ k * C**-0.5, dim=-1)
        out = (v @ attn_Bll.transpose(1, 2)).reshape(B, C, H, W)
        return x_BChw + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # VAR/taming's asymmetric pad: exact halving


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Middle(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.block1, self.attn, self.block2 = (
            ResnetBlock(c, c, groups),
            AttnBlock(c, groups),
            ResnetBlock(c, c, groups),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.attn(self.block1(x)))


class Encoder(nn.Module):
    """Image B3HW in [-1, 1] -> latent B Cvae (H/f) (W/f)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        g, widths = cfg.norm_groups, [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        self.levels = nn.ModuleList()
        cin = widths[0]
        for i, w in enumerate(widths):
            level = nn.Sequential()
            for _ in range(cfg.num_res_blocks):
                level.append(ResnetBlock(cin, w, g))
                cin = w
            if i != len(widths) - 1:
                level.append(Downsample(w))
            self.levels.append(level)
        self.mid = Middle(cin, g)
        self.norm_out = norm(cin, g)
        self.conv_out = nn.Conv2d(cin, cfg.cvae, 3, padding=1)

    def forward(self, img_B3HW: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(img_B3HW)
        for level in self.levels:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """Latent B Cvae h w -> image B3 (h f) (w f), optionally guided by the LR image (B3TT)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        g, widths = cfg.norm_groups, [cfg.ch * m for m in cfg.ch_mult]
        cin = widths[-1]
        self.conv_in = nn.Conv2d(cfg.cvae, cin, 3, padding=1)
        self.mid = Middle(cin, g)
        self.levels = nn.ModuleList()  # coarse to fine
        self.level_widths = []
        for i in reversed(range(len(widths))):
            level = nn.Sequential()
            self.level_widths.append(cin)
            for _ in range(cfg.num_res_blocks + 1):
                level.append(ResnetBlock(cin, widths[i], g))
                cin = widths[i]
            if i != 0:
                level.append(Upsample(cin))
            self.levels.append(level)
        self.norm_out = norm(cin, g)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

        self.lr_guided = cfg.lr_guided_decoder
        if self.lr_guided:
            self.tile = cfg.tile
            self.guides = nn.ModuleList()
            for w in self.level_widths:
                zero = nn.Conv2d(w, w, 3, padding=1)
                nn.init.zeros_(zero.weight)
                nn.init.zeros_(zero.bias)  # starts as the unguided decoder
                self.guides.append(nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.SiLU(), zero))
            # LR image resized to every resolution any decoder level can see (fixed matrices).
            sides = {s * 2**j for s in cfg.segment_sides for j in range(len(widths))}
            for r in sorted(sides - {cfg.tile}):
                m = area_matrix(cfg.tile, r) if r < cfg.tile else bicubic_matrix(cfg.tile, r)
                self.register_buffer(f"lr_to_{r}", m, persistent=False)

    def _lr_at(self, lr_B3TT: torch.Tensor, side: int) -> torch.Tensor:
        if side == self.tile:
            return lr_B3TT
        m = getattr(self, f"lr_to_{side}")
        return resize_with(lr_B3TT, m, m)

    def forward(self, z_BChw: torch.Tensor, lr_B3TT: torch.Tensor | None = None) -> torch.Tensor:
        if self.lr_guided and lr_B3TT is None:
            raise ValueError("this decoder is LR-guided: pass the LR image (B, 3, T, T) in [-1, 1]")
        h = self.mid(self.conv_in(z_BChw))
        for j, level in enumerate(self.levels):
            if self.lr_guided:
                h = h + self.guides[j](self._lr_at(lr_B3TT, h.shape[-1]))
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
