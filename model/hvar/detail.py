"""The generative stage of Model 2.0 on top of the floor: HIT tokens decoded as the detail it lacks.

    lr (T x T) --floor (frozen)--> x1, x2, x4 (the restoration: clean, soft)
    tokens (the HR image's in training and for the oracle; a transformer's at inference)
        --HIT's quantizer (frozen)--> running sum at the end of each segment (x1, x2, x4 sizes)
    running sum of segment n --DetailDecoder, guided by the floor's output at that size--> image

The decoder is HIT's (`vae.Decoder`, its weights to start from) with two changes: every level sees the
floor's output area-downsampled to its side instead of the LR tile, and a 1x1 convolution of the floor's
output (zero at the start) is added to the image it makes, so that it can learn to keep what the floor
got right and spend its tokens on the rest. At step 0 it is the tokenizer's decoder guided by the
floor. The tokenizer's encoder and codebook stay frozen, so a transformer trained on that tokenizer
predicts the same tokens this decoder reads.

A first version made the image a correction of the floor's output (`guide + conv_out(h)`, conv_out
zero at the start, so that step 0 gave the floor exactly). It never left the floor: after 350 steps
conv_out's weights were still below 1e-3, because the decoder's features, trained to draw the image, say
nothing linear about the floor's error, and with conv_out near zero no gradient reaches them
(`model/checkpoints/detail-base/README.md`).

Public API:
  DetailDecoder(cfg).forward(fhat, guide)  one segment's running sum + the floor's output at its size
  Detail(floor, tokenizer)                 the floor, the frozen token parts and a DetailDecoder
  Detail.floor_outputs(lr01)               the floor's x1, x2, x4 in [-1, 1]
  Detail.decoded                           which outputs the tokens decode to (HIT: x1, x2, x4; plain: x4)
  Detail.features(idx)                     tokens -> what the decoder reads of each decoded output
  Detail.decode(idx, guides)               tokens + the floor's outputs -> images in [-1, 1]
  centre_tiles(batch, guides, tile)        the centre tile of a pair-cache batch (training)
  save_detail / load_detail                a run folder: decoder + tokenizer + floor
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .config import HVARConfig, TokenizerConfig
from .floor import Floor, load_floor, save_floor
from .tokenizer import HIT, load_hit, save_hit
from .vae import Decoder


class DetailDecoder(Decoder):
    """HIT's decoder guided by the floor's output at the segment's size, plus a learned 1x1 mix of it."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__(dataclasses.replace(cfg, lr_guided_decoder=False))
        self.guides = nn.ModuleList()
        for w in self.level_widths:
            zero = nn.Conv2d(w, w, 3, padding=1)
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)
            self.guides.append(nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.SiLU(), zero))
        self.keep = nn.Conv2d(3, 3, 1)  # how much of the floor's output to keep, per channel mix
        nn.init.zeros_(self.keep.weight)
        nn.init.zeros_(self.keep.bias)

    def forward(self, z_BChw: torch.Tensor, guide_B3HW: torch.Tensor) -> torch.Tensor:
        """Running sum (B Cvae h w) and the floor's output at the decoded size (B 3 hf wf, [-1, 1])."""
        h = self.mid(self.conv_in(z_BChw))
        for j, level in enumerate(self.levels):
            k = guide_B3HW.shape[-1] // h.shape[-1]
            g = F.avg_pool2d(guide_B3HW, k) if k > 1 else guide_B3HW  # exact area downsampling
            h = level(h + self.guides[j](g))
        return self.conv_out(F.silu(self.norm_out(h))) + self.keep(guide_B3HW)

    @classmethod
    def from_hit(cls, hit: HIT) -> DetailDecoder:
        """A DetailDecoder with the trained HIT decoder's weights (its LR guides too, if it has them)."""
        dec = cls(hit.cfg)
        missing, unexpected = dec.load_state_dict(hit.decoder.state_dict(), strict=False)
        assert not unexpected, unexpected
        assert all(k.startswith(("keep", "guides")) for k in missing), missing
        return dec


class Detail(nn.Module):
    def __init__(self, floor: Floor, tokenizer: HIT, decoder: DetailDecoder | None = None):
        super().__init__()
        self.floor = floor.eval().requires_grad_(False)
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.decoder = decoder if decoder is not None else DetailDecoder.from_hit(tokenizer)

    @property
    def cfg(self) -> TokenizerConfig:
        return self.tokenizer.cfg

    def train(self, mode: bool = True) -> Detail:
        super().train(mode)
        self.floor.eval()
        self.tokenizer.eval()
        return self

    @torch.no_grad()
    def floor_outputs(self, lr01_B3HW: torch.Tensor) -> list[torch.Tensor]:
        """The floor's x1, x2, x4 of an LR batch in [0, 1], as images in [-1, 1]."""
        return [x.clamp(0, 1) * 2 - 1 for x in self.floor(lr01_B3HW)]

    @torch.no_grad()
    def tokens(self, img_B3HW: torch.Tensor) -> list[torch.Tensor]:
        """HIT tokens of an image of side 4T in [-1, 1] (the HR tile, or the floor's x4 of it)."""
        return self.tokenizer.img_to_idx(img_B3HW)

    @property
    def decoded(self) -> tuple[int, ...]:
        """The outputs (scale factors) the tokens decode to: HIT's segments end at x1, x2 and x4; the
        plain VAR quantizer's (the ablation) has one latent, the x4 image's, so it leaves x1 and x2 to
        the floor."""
        return (1, 2, 4) if self.cfg.hierarchical else (4,)

    def features(self, idx_list: list[torch.Tensor]) -> list[torch.Tensor]:
        """Tokens -> what the decoder reads of each decoded output (B Cvae h w), the frozen tokenizer's
        part."""
        with torch.no_grad():
            fhats = self.tokenizer.idx_to_fhats(idx_list)[-len(self.decoded) :]
            return [self.tokenizer.post_quant_conv(f) for f in fhats]

    def decode(self, idx_list: list[torch.Tensor], guides: list[torch.Tensor]) -> list[torch.Tensor]:
        """Tokens and the floor's x1, x2, x4 (B 3 T, 2T, 4T in [-1, 1]) -> x1, x2, x4 (unclamped); the
        outputs the tokens do not decode to are the floor's."""
        n = len(self.decoded)
        decoded = [self.decoder(f, g) for f, g in zip(self.features(idx_list), guides[-n:], strict=True)]
        return guides[: len(guides) - n] + decoded


def centre_tiles(batch: dict[str, torch.Tensor], guides: list[torch.Tensor], tile: int):
    """The centre tile (LR side `tile`) of a pair-cache batch (`hvar.pairs` x4 kind, in [0, 1]) and of the
    floor's outputs of its LR (in [-1, 1]): (HR tile, floor outputs, targets x1, x2, x4), all in [-1, 1]."""
    m = (batch["lr"].shape[-1] - tile) // 2

    def cut(x: torch.Tensor, s: int) -> torch.Tensor:
        return x[..., m * s : (m + tile) * s, m * s : (m + tile) * s]

    targets = [cut(batch[f"t{s}"], s) * 2 - 1 for s in (1, 2, 4)]
    return targets[2], [cut(g, s) for g, s in zip(guides, (1, 2, 4), strict=True)], targets


# ---- files ------------------------------------------------------------------------------------------------
WEIGHTS_FILE, TOKENIZER_DIR, FLOOR_DIR = "decoder.safetensors", "tokenizer", "floor"


def save_detail(model: Detail, folder: str | Path) -> None:
    """The decoder's weights in `folder`; the frozen tokenizer and floor once, in their subfolders."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / TOKENIZER_DIR).exists():
        save_hit(model.tokenizer, HVARConfig(name="detail", tokenizer=model.cfg), folder / TOKENIZER_DIR)
        save_floor(model.floor, folder / FLOOR_DIR)
    state = {k: v.detach().contiguous().cpu() for k, v in model.decoder.state_dict().items()}
    save_file(state, folder / (WEIGHTS_FILE + ".tmp"))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)


def load_detail(folder: str | Path) -> Detail:
    folder = Path(folder)
    tokenizer, _ = load_hit(folder / TOKENIZER_DIR)
    decoder = DetailDecoder(tokenizer.cfg)
    decoder.load_state_dict(load_file(folder / WEIGHTS_FILE))
    return Detail(load_floor(folder / FLOOR_DIR), tokenizer, decoder).eval()
