"""H-VAR for super-resolution: the frozen tokenizer (HIT) around the next-scale transformer.

    lr (T x T) --bilinear x4--> HIT encoder --> condition latents (P x P) --> transformer
    transformer, one level per scale, KV cache passed along --> tokens of every scale
    tokens --> running sums at the segment ends --> HIT decoder --> x1 (T), x2 (2T), x4 (4T)

Public API (the trainer, the evaluation and the ONNX export use these):
  HVAR.condition(lr)                      condition latents f_BCvPP of an LR batch
  HVAR.condition_and_lr_tokens(lr)        the same, and z_LR (HIT tokens of the upsampled LR) for DPO
  HVAR.draw(lr, noise, temperature)       tokens and running sums of one pass, KV-cached
  HVAR.generate(lr, noise, temperature)   the same pass's tokens and images (in [-1, 1])
  HVAR.teacher_forced_logits_by_cache(..) the cached loop fed with given tokens (tests)
  HVAR.forward(lr01, noise, temperature)  the ONNX contract (`hvar.contract`): x1, x2, x4, tokens
  save_hvar / load_hvar                   a run folder: transformer + tokenizer weights, one config
Everything here has static Python control flow (loops over the config's patch list only).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from .config import SCALES, HVARConfig
from .resize import area_down, resize_with
from .sample import sample_top_k
from .tokenizer import HIT, load_hit, save_hit
from .transformer import KVCache, NextScaleTransformer


def bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of 1-D linear resampling = F.interpolate(mode='bilinear',
    align_corners=False, antialias=False): a MatMul in the export, no Resize-op semantics."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = n_in / n_out
    for i in range(n_out):
        x = max((i + 0.5) * scale - 0.5, 0.0)  # PyTorch clamps negative source coordinates to 0
        x0 = min(math.floor(x), n_in - 1)
        x1 = min(x0 + 1, n_in - 1)
        t = x - x0
        m[i, x0] += 1 - t
        m[i, x1] += t
    return m.float()


class HVAR(nn.Module):
    def __init__(self, cfg: HVARConfig, tokenizer: HIT | None = None):
        super().__init__()
        self.cfg = cfg
        tok = cfg.tokenizer
        self.tokenizer = tokenizer if tokenizer is not None else HIT(tok)
        self.tokenizer.eval().requires_grad_(False)  # frozen: trained by the tokenizer issue
        self.transformer = NextScaleTransformer(tok, cfg.transformer)
        self.register_buffer("up_lr", bilinear_matrix(tok.tile, tok.hr_tile), persistent=False)

    # The runner's model contract (`hvar.contract`): LR tile side, and uniforms per tile (one per token).
    @property
    def tile(self) -> int:
        return self.cfg.tokenizer.tile

    @property
    def tokens(self) -> int:
        return self.cfg.tokenizer.num_tokens

    def train(self, mode: bool = True) -> HVAR:
        super().train(mode)
        self.tokenizer.eval()  # never in training mode (no dropout/BN, but keep the contract explicit)
        return self

    # ---- conditioning ---------------------------------------------------------------------------------
    def upsample_lr(self, lr_B3TT: torch.Tensor) -> torch.Tensor:
        """An LR tile to the HR side; an image already there (the floor's x4: condition "x4") as it is."""
        if lr_B3TT.shape[-1] == self.cfg.tokenizer.hr_tile:
            return lr_B3TT
        return resize_with(lr_B3TT, self.up_lr, self.up_lr)

    @torch.no_grad()
    def condition(self, lr_B3TT: torch.Tensor) -> torch.Tensor:
        """LR (or the floor's x4) in [-1, 1] -> condition latents f_BCvPP (the HIT encoding at the full
        latent side)."""
        tok = self.tokenizer
        return tok.quant_conv(tok.encoder(self.upsample_lr(lr_B3TT)))

    @torch.no_grad()
    def condition_and_lr_tokens(self, lr_B3TT: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Condition latents and z_LR, the HIT tokens of the LR image upsampled to the HR size (one
        encoding serves both: the full-size latent is the last of HIT's pyramid)."""
        f_list = self.tokenizer.encode(self.upsample_lr(lr_B3TT))
        return f_list[-1], self.tokenizer.quantizer(f_list).idx

    @torch.no_grad()
    def teacher_inputs(self, idx_list: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token lists -> (next-scale inputs x_BlCv for scales 1..K-1, flat targets idx_BL)."""
        return self.tokenizer.idx_to_next_scale_inputs(idx_list), torch.cat(idx_list, dim=1)

    # ---- inference --------------------------------------------------------------------------------------
    def _start(self, f_BCvPP: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        """Condition tokens through every block (bidirectional): the AdaLN condition and the first cache."""
        x_cond_BNcC, cond_BD = self.transformer.embed_condition(f_BCvPP)
        _, cache = self.transformer.run(x_cond_BNcC, cond_BD)
        return cond_BD, cache

    def _step(
        self,
        si: int,
        x_next_BlCv: torch.Tensor | None,
        cond_BD: torch.Tensor,
        cache: KVCache,
        hint_Bl: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """One level: the tokens of scale si attend to the cache -> logits_BlV and the extended cache."""
        tr = self.transformer
        x_BlC = tr.embed_scale(si, x_next_BlCv, cond_BD.shape[0], hint_Bl)
        h_BlC, cache = tr.run(x_BlC, cond_BD, cache=cache)
        return tr.hinted(tr.logits(h_BlC, cond_BD), si, hint_Bl), cache

    def _begin(self, lr_B3TT: torch.Tensor) -> tuple[torch.Tensor, KVCache, list[torch.Tensor] | None]:
        """The condition through the blocks, and with TransformerConfig.hint the image's own tokens (one
        encoding gives both)."""
        if self.cfg.transformer.hint:
            f_BCvPP, hint = self.condition_and_lr_tokens(lr_B3TT)
        else:
            f_BCvPP, hint = self.condition(lr_B3TT), None
        cond_BD, cache = self._start(f_BCvPP)
        return cond_BD, cache, hint

    def draw(
        self,
        lr_B3TT: torch.Tensor,
        noise_BL: torch.Tensor | None = None,
        temperature: torch.Tensor | float = 0.0,
        top_k: int | None = None,
        prior: list[torch.Tensor] | None = None,
        confidence: float = 0.0,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The token loop alone: LR in [-1, 1] -> (tokens per scale, running sums at the segment ends).
        noise_BL: one uniform per generated token (ignored when temperature is 0; None = zeros).
        prior: tokens per scale to keep wherever the transformer's most likely token has a probability
        below `confidence` (the detail stage passes the floor's own tokens: unsure means no change)."""
        tok, q = self.cfg.tokenizer, self.tokenizer.quantizer
        top_k = self.cfg.transformer.top_k if top_k is None else top_k
        B = lr_B3TT.shape[0]
        if noise_BL is None:
            noise_BL = lr_B3TT.new_zeros(B, tok.num_tokens)
        cond_BD, cache, hint = self._begin(lr_B3TT)
        fhat, x_next, idx_list, fhats = None, None, [], []
        for si, (b, e) in enumerate(self.transformer.begin_ends):
            logits_BlV, cache = self._step(si, x_next, cond_BD, cache, None if hint is None else hint[si])
            idx_Bl = sample_top_k(logits_BlV, noise_BL[:, b:e], temperature, top_k)
            if prior is not None:
                sure_Bl = torch.softmax(logits_BlV.float(), dim=-1).amax(dim=-1) >= confidence
                idx_Bl = torch.where(sure_Bl, idx_Bl, prior[si])
            idx_list.append(idx_Bl)
            fhat = q.add_scale(si, fhat, q.lookup(idx_Bl, si))
            if si in q.segment_last:
                fhats.append(fhat)
            if si + 1 < len(tok.patch_nums):
                x_next = q.next_input(si, fhat).flatten(2).transpose(1, 2)
        return idx_list, fhats

    def generate(
        self,
        lr_B3TT: torch.Tensor,
        noise_BL: torch.Tensor | None = None,
        temperature: torch.Tensor | float = 0.0,
        **draw_options,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One pass: LR in [-1, 1] -> (tokens per scale, images at the segment ends in [-1, 1]); `draw`'s
        options (top_k, prior, confidence) pass through."""
        tok = self.cfg.tokenizer
        idx_list, fhats = self.draw(lr_B3TT, noise_BL, temperature, **draw_options)
        lr_guide = None
        if tok.lr_guided_decoder:  # an LR tile; the floor's x4 (condition "x4") brought down to one
            lr_guide = (
                lr_B3TT if lr_B3TT.shape[-1] == tok.tile else area_down(lr_B3TT, tok.hr_tile // tok.tile)
            )
        imgs = [self.tokenizer.fhat_to_img(f, lr_guide) for f in fhats]
        if not tok.hierarchical:  # the plain tokenizer decodes every partial sum at the HR size
            imgs = [area_down(im, SCALES[-1] // s) for im, s in zip(imgs, SCALES, strict=True)]
        return idx_list, imgs

    def teacher_forced_logits_by_cache(self, lr_B3TT: torch.Tensor, idx_list: list[torch.Tensor]):
        """The inference loop (cache and all) fed with given tokens instead of sampled ones:
        logits_BLV, to compare with the teacher-forced forward."""
        q = self.tokenizer.quantizer
        cond_BD, cache, hint = self._begin(lr_B3TT)
        fhat, x_next, out = None, None, []
        for si in range(len(self.cfg.tokenizer.patch_nums)):
            logits_BlV, cache = self._step(si, x_next, cond_BD, cache, None if hint is None else hint[si])
            out.append(logits_BlV)
            fhat = q.add_scale(si, fhat, q.lookup(idx_list[si], si))
            x_next = q.next_input(si, fhat).flatten(2).transpose(1, 2)
        return torch.cat(out, dim=1)

    def forward(
        self, lr_N3TT: torch.Tensor, noise_NL: torch.Tensor, temperature_1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model contract (`hvar.contract`), the graph `hvar.export` writes: lr in [0, 1], one
        uniform per token, temperature [1] (0 = greedy) -> x1, x2, x4 in [0, 1] and the tokens drawn."""
        idx_list, imgs = self.generate(lr_N3TT * 2 - 1, noise_NL, temperature_1)
        x1, x2, x4 = ((im + 1) / 2 for im in imgs)
        return x1, x2, x4, torch.cat(idx_list, dim=1)


# ---- files ------------------------------------------------------------------------------------------------
WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_DIR = "model.safetensors", "config.json", "tokenizer"


def save_hvar(model: HVAR, folder: str | Path) -> None:
    """Transformer weights + the whole config in `folder`, the tokenizer in `folder/tokenizer`, so a
    run folder alone rebuilds the model (evaluation, export). Written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / TOKENIZER_DIR / WEIGHTS_FILE).exists():
        save_hit(model.tokenizer, model.cfg, folder / TOKENIZER_DIR)  # frozen: written once
    state = {k: v.detach().contiguous().cpu() for k, v in model.transformer.state_dict().items()}
    save_file(state, folder / (WEIGHTS_FILE + ".tmp"))
    (folder / (CONFIG_FILE + ".tmp")).write_text(json.dumps(model.cfg.to_dict(), indent=2))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)


def load_hvar(folder: str | Path, map_location: str = "cpu") -> HVAR:
    folder = Path(folder)
    cfg = HVARConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
    tokenizer, _ = load_hit(folder / TOKENIZER_DIR, map_location)
    model = HVAR(cfg, tokenizer)
    model.transformer.load_state_dict(load_file(folder / WEIGHTS_FILE, device=map_location))
    return model.eval()
