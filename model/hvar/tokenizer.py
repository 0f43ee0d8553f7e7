"""HIT: the hierarchical multi-scale image tokenizer (H-VAR's first contribution).

A VQ-VAE (`vae.py`) around VAR's multi-scale residual quantizer (`quantizer.py`), with the patch list
split into segments that end at the latent sides of x1, x2 and x4 (T/f, 2T/f, 4T/f). Segment n
quantizes the encoding of the HR image area-downsampled to that segment's size, starting from the
previous segment's running sum upsampled (bicubic) to the new latent side. Hence:
  * the first k segments decode (fully convolutional decoder) to the image at segment k's size;
  * the tokens of the x1- and x2-size images are exactly the first segments of the full tokens,
    because the image pyramid is built by repeated exact 2x2 averaging (`resize.area_half`).
`hierarchical=False` is the plain VAR tokenizer with the same patch list and codebook: one full-size
latent, every partial sum decoded at full size (the ablation baseline).

Public API (the transformer and the export use these):
  img_to_idx(img)                    image of side T, 2T or 4T -> list of idx_Bl (one per scale)
  idx_to_next_scale_inputs(idx)      teacher-forcing inputs x_BlC for scales 1..K-1 (VAR's)
  quantizer.add_scale / next_input   one autoregressive step with an explicit running sum
  idx_to_fhats(idx)                  running sum at the end of each complete segment
  fhat_to_img(fhat, lr)              decode one partial sum to an image in [-1, 1]
  idx_to_imgs(idx, lr)               the image of every complete segment (x1, x2, x4 sizes)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .config import HVARConfig, TokenizerConfig
from .quantizer import MultiScaleQuantizer
from .resize import area_half
from .vae import Decoder, Encoder


@dataclass
class TokOut:
    recons: list[torch.Tensor | None]  # per segment: decoded image (None where not decoded)
    targets: list[torch.Tensor]  # per segment: the image that segment should reconstruct
    vq_loss: torch.Tensor
    hits_SV: torch.Tensor
    rest_NC: torch.Tensor
    idx: list[torch.Tensor]


class HIT(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quant_conv = nn.Conv2d(cfg.cvae, cfg.cvae, 3, padding=1)
        self.quantizer = MultiScaleQuantizer(cfg)
        self.post_quant_conv = nn.Conv2d(cfg.cvae, cfg.cvae, 3, padding=1)
        self.decoder = Decoder(cfg)

    # ---- encoding -------------------------------------------------------------------------------------
    def num_segments_for(self, img_B3HW: torch.Tensor) -> int:
        """How many segments an image of this size covers: T -> 1, 2T -> 2, 4T -> 3."""
        h, w = img_B3HW.shape[-2:]
        if h != w or h not in self.cfg.image_sides:
            raise ValueError(f"HIT tokenizes square tiles of side {self.cfg.image_sides}, got {h}x{w}")
        if not self.cfg.hierarchical and h != self.cfg.hr_tile:
            raise ValueError(f"the plain (non-hierarchical) tokenizer only takes {self.cfg.hr_tile}px tiles")
        return self.cfg.image_sides.index(h) + 1

    def pyramid(self, img_B3HW: torch.Tensor) -> list[torch.Tensor]:
        """The image at each covered segment's size, smallest first, by repeated exact 2x2 averaging."""
        out = [img_B3HW]
        for _ in range(self.num_segments_for(img_B3HW) - 1):
            out.insert(0, area_half(out[0]))
        return out

    def encode(self, img_B3HW: torch.Tensor) -> list[torch.Tensor]:
        """Continuous latent of each covered segment (plain: the same full-size latent for all)."""
        if not self.cfg.hierarchical:
            self.num_segments_for(img_B3HW)
            f_BChw = self.quant_conv(self.encoder(img_B3HW))
            return [f_BChw] * len(self.cfg.segments)
        return [self.quant_conv(self.encoder(x)) for x in self.pyramid(img_B3HW)]

    @torch.no_grad()
    def img_to_idx(self, img_B3HW: torch.Tensor) -> list[torch.Tensor]:
        """Image of side T, 2T or 4T in [-1, 1] -> tokens idx_Bl of every scale of the covered segments."""
        return self.quantizer(self.encode(img_B3HW)).idx

    def token_parts(self) -> tuple[nn.Module, ...]:
        """Everything that decides an image's tokens: encoder, quant_conv, the quantizer (codebook)."""
        return self.encoder, self.quant_conv, self.quantizer

    def freeze_tokens(self) -> None:
        """Fix the token parts, so every image keeps its tokens while the decoder trains."""
        for part in self.token_parts():
            part.requires_grad_(False)

    def same_tokens_as(self, other: HIT) -> bool:
        """Whether both give every image the same tokens (equal encoder and codebook weights)."""
        pairs = zip(self.token_parts(), other.token_parts(), strict=True)
        for a, b in ((a.state_dict(), b.state_dict()) for a, b in pairs):
            if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
                return False
        return True

    # ---- decoding (traced by the export: static loops only) -------------------------------------------
    def idx_to_fhats(self, idx_list: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.quantizer.idx_to_fhats(idx_list)

    def idx_to_next_scale_inputs(self, idx_list: list[torch.Tensor]) -> torch.Tensor:
        return self.quantizer.idx_to_next_scale_inputs(idx_list)

    def fhat_to_img(self, fhat_BChw: torch.Tensor, lr_B3TT: torch.Tensor | None = None) -> torch.Tensor:
        """Decode a running sum (at any segment's latent side) to an image in [-1, 1]."""
        return self.decoder(self.post_quant_conv(fhat_BChw), lr_B3TT).clamp(-1, 1)

    def idx_to_imgs(
        self, idx_list: list[torch.Tensor], lr_B3TT: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Image of every complete segment: x1, x2, x4 sizes for HIT; all at 4T for plain."""
        return [self.fhat_to_img(fhat, lr_B3TT) for fhat in self.idx_to_fhats(idx_list)]

    # ---- training -------------------------------------------------------------------------------------
    def forward(
        self,
        img_B3HW: torch.Tensor,
        lr_B3TT: torch.Tensor | None = None,
        bypass_B: torch.Tensor | None = None,
    ) -> TokOut:
        """Quantize, then decode each segment (HIT) or the last one (plain VAR, trained on the final
        reconstruction only). `bypass_B` (bool per sample) decodes the continuous latent instead of the
        quantized one (HART's quantizer bypass); the caller draws it, so randomness stays explicit."""
        f_list = self.encode(img_B3HW)
        q = self.quantizer(f_list)
        hier = self.cfg.hierarchical
        targets = self.pyramid(img_B3HW) if hier else [img_B3HW] * len(f_list)
        recons: list[torch.Tensor | None] = []
        for n, (fq, fc) in enumerate(zip(q.fhat_st, f_list, strict=True)):
            if not hier and n != len(f_list) - 1:
                recons.append(None)
                continue
            z = fq if bypass_B is None else torch.where(bypass_B.view(-1, 1, 1, 1), fc, fq)
            recons.append(self.decoder(self.post_quant_conv(z), lr_B3TT))  # unclamped for the loss
        return TokOut(recons, targets, q.vq_loss, q.hits_SV, q.rest_NC, q.idx)


def image_grad_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences: keeps edges sharp without a VGG."""
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def load_lpips(path: str | None):
    """A local TorchScript module lpips(x, y) -> per-sample distance, or None. Never downloads."""
    if not path:
        return None
    m = torch.jit.load(path, map_location="cpu").eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def tokenizer_loss(out: TokOut, cfg: TokenizerConfig, lpips=None) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-segment reconstruction (L1 + gradient term [+ LPIPS]) averaged over decoded segments, plus VQ."""
    rec, logs = 0.0, {}
    decoded = [
        (n, r, t) for n, (r, t) in enumerate(zip(out.recons, out.targets, strict=True)) if r is not None
    ]
    for n, r, t in decoded:
        l1 = F.l1_loss(r, t)
        term = l1 + cfg.grad_weight * image_grad_l1(r, t)
        if lpips is not None and cfg.lpips_weight > 0:
            term = term + cfg.lpips_weight * lpips(r, t).mean()
        rec = rec + term
        logs[f"l1_seg{n}"] = float(l1.detach())
    rec = rec / len(decoded)
    loss = rec + out.vq_loss
    logs.update(rec=float(rec.detach()), vq=float(out.vq_loss.detach()), loss=float(loss.detach()))
    return loss, logs


# ---- files -------------------------------------------------------------------------------------------------
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


def save_hit(model: HIT, cfg: HVARConfig, folder: str | Path) -> None:
    """Weights (safetensors) and the config that rebuilds the model, written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, folder / (WEIGHTS_FILE + ".tmp"))
    (folder / (CONFIG_FILE + ".tmp")).write_text(json.dumps(cfg.to_dict(), indent=2))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)


def load_hit(folder: str | Path, map_location: str = "cpu") -> tuple[HIT, HVARConfig]:
    folder = Path(folder)
    cfg = HVARConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
    model = HIT(cfg.tokenizer)
    model.load_state_dict(load_file(folder / WEIGHTS_FILE, device=map_location))
    return model, cfg
