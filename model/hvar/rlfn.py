"""RLFN (Residual Local Feature Network; Kong et al., 2022, the NTIRE 2022 efficient-SR winner), written from
the description in `../shared/pretrained/README.md` so that the published weights (Apache-2.0) load as they
are. It is not part of hvar: it is a peer the runner's benchmark (bench/runner) measures the model against,
next to SPAN (`hvar.floor`, whose body the model starts from).

    lr ([0, 255]) -> conv_1 -> 6 RLFBs -> conv_2, + conv_1's output -> conv (C -> 3 s^2), PS(s) -> [0, 255]

Unlike SPAN it is not purely local: each block's ESA attention max-pools a strided map of much of the input,
so a tile's output depends on the tile around it (tiles may show seams where SPAN's never do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .paths import SHARED

RLFN_WEIGHTS = SHARED / "pretrained/rlfn/rlfn_x4.pth"


@dataclass(frozen=True)
class RLFNConfig:
    ch: int = 52  # feature width C
    esa_ch: int = 16
    blocks: int = 6
    scale: int = 4
    slope: float = 0.05  # leaky ReLU


X4 = RLFNConfig()  # the published rlfn_x4.pth


def conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class ESA(nn.Module):
    """Enhanced spatial attention: a coarse map of the block's features (strided conv, max-pool 7/3), brought
    back to full size, gates every pixel."""

    def __init__(self, ch: int, esa_ch: int):
        super().__init__()
        self.conv1, self.conv_f = conv(ch, esa_ch, 1), conv(esa_ch, esa_ch, 1)
        self.conv2 = nn.Conv2d(esa_ch, esa_ch, 3, stride=2)  # no padding
        self.conv3, self.conv4 = conv(esa_ch, esa_ch), conv(esa_ch, ch, 1)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        f_BFHW = self.conv1(x_BCHW)
        coarse_BFhw = self.conv3(F.max_pool2d(self.conv2(f_BFHW), kernel_size=7, stride=3))
        up_BFHW = F.interpolate(coarse_BFhw, size=x_BCHW.shape[-2:], mode="bilinear", align_corners=False)
        return x_BCHW * torch.sigmoid(self.conv4(up_BFHW + self.conv_f(f_BFHW)))


class RLFB(nn.Module):
    """Three 3x3 convs with leaky ReLU, a residual, a 1x1 conv and the attention."""

    def __init__(self, cfg: RLFNConfig):
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = conv(cfg.ch, cfg.ch), conv(cfg.ch, cfg.ch), conv(cfg.ch, cfg.ch)
        self.c5 = conv(cfg.ch, cfg.ch, 1)
        self.esa = ESA(cfg.ch, cfg.esa_ch)
        self.slope = cfg.slope

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        h = x_BCHW
        for c in (self.c1_r, self.c2_r, self.c3_r):
            h = F.leaky_relu(c(h), self.slope)
        return self.esa(self.c5(h + x_BCHW))


class RLFN(nn.Module):
    def __init__(self, cfg: RLFNConfig = X4):
        super().__init__()
        self.cfg = cfg
        self.conv_1 = conv(3, cfg.ch)
        self.blocks = nn.Sequential(*(RLFB(cfg) for _ in range(cfg.blocks)))
        self.conv_2 = conv(cfg.ch, cfg.ch)
        self.upsampler = nn.Sequential(conv(cfg.ch, 3 * cfg.scale**2), nn.PixelShuffle(cfg.scale))

    @property
    def conv_radius(self) -> int:
        """LR pixels on each side its convolutions reach (one per 3x3 conv on the path); the attention reaches
        further."""
        return 1 + 3 * self.cfg.blocks + 1 + 1

    def forward(self, lr255_B3HW: torch.Tensor) -> torch.Tensor:
        """LR in [0, 255] -> SR in [0, 255] (unclamped), `scale` times the size."""
        f0 = self.conv_1(lr255_B3HW)
        return self.upsampler(self.conv_2(self.blocks(f0)) + f0)


def rlfn_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The published checkpoint in this module's names (`block_<i>` -> `blocks.<i-1>`)."""
    out = {}
    for k, v in torch.load(path, map_location="cpu", weights_only=True).items():
        if k.startswith("block_"):
            n, rest = k.split(".", 1)
            k = f"blocks.{int(n.removeprefix('block_')) - 1}.{rest}"
        out[k] = v
    return out


def load_rlfn(path: str | Path = RLFN_WEIGHTS, cfg: RLFNConfig = X4) -> RLFN:
    model = RLFN(cfg)
    model.load_state_dict(rlfn_state(path))
    return model.eval()
