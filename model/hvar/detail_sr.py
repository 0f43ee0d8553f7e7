"""The detail path as one model of the runner's contract: the floor, then tokens that add what it lacks.

    lr (N 3 T T) --floor--> x1, x2, x4 (the guides)
    the outputs cut into g x g sub-tiles of the tokenizer's tile t, `stride` LR px apart, x4's of side 4t
        --transformer (condition: the sub-tile's x4, hinted)--> tokens of each sub-tile
    each sub-tile's running sums at the segment ends
        --DetailDecoder, guided by the floor's output of that sub-tile--> x1, x2, x4 of the sub-tile
    the sub-tiles put back (side by side at stride t; overlapping ones blended, `SubTiles`)

The transformer, the tokenizer and the decoder work on the tiles they were trained on (t LR px), but the
runner's tile is T: the floor sees T px of context, all sub-tiles go through in one batch, and the
runner's overlap is paid once per T, not per t (`bench/model/detail_speed.py` times the parts). The
decoder must see one sub-tile at a time: its GroupNorms and its attention pool over the whole map, and
fed the sub-tiles' latents as one map it gave the floor's own tokens back 18-21 dB worse (x1-x4 against
the floor, a Set5 tile) than sub-tile by sub-tile.

Public API:
  DetailSR(detail, transformer, tile, decode, stride)
                                        the contract model (`hvar.contract`): lr, noise, temperature ->
                                        x1, x2, x4, tokens; tokens = g*g*L, sub-tile after sub-tile
  DetailSR.guides(lr01)                 the floor's outputs in [-1, 1]
  DetailSR.render(guides, fhats)        running sums per sub-tile -> x1, x2, x4 in [0, 1]
  DetailSR.decode_tokens(lr01, tokens)  the images given tokens (to check another runtime's draws)
  DetailSR.sub_tiles(x4)                the transformer's inputs of a batch: (N g g) 3 4t 4t
  SubTiles(tile, side, stride)          a batch cut into its sub-tiles (.cut), and put back (.paste)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import SCALES
from .detail import Detail
from .sr import HVAR


class SubTiles(nn.Module):
    """The g x g sub-tiles of side t, `stride` apart, that cover a tile of side T, at every output scale.

    Side by side (stride t), pasting puts each back in place. Overlapping (stride < t), each sub-tile's
    pixels are weighted down linearly over the t - stride pixels it shares with a neighbour, and the sum
    is divided by the weights: the decoder's borders, drawn without context, fade into the neighbour's
    interior; where a tile's border has one sub-tile, its pixels are that sub-tile's."""

    def __init__(self, tile: int, side: int, stride: int):
        super().__init__()
        if not 0 < stride <= side or (tile - side) % stride:
            raise ValueError(
                f"sub-tiles of {side} px, {stride} px apart, do not cover the tile side {tile} exactly"
            )
        self.tile, self.side, self.stride = tile, side, stride
        self.starts = list(range(0, tile - side + 1, stride))
        self.g = len(self.starts)
        for s in SCALES if stride < side else ():  # per scale: a sub-tile's weights, 1 / their sum (T T)
            fade = (torch.arange(side * s) + 0.5) / ((side - stride) * s)
            ramp = torch.minimum(torch.ones(side * s), torch.minimum(fade, fade.flip(0)))
            weight_kk = ramp[:, None] * ramp[None, :]
            total_TT = torch.zeros(tile * s, tile * s)
            for y in self.starts:
                for x in self.starts:
                    total_TT[y * s : (y + side) * s, x * s : (x + side) * s] += weight_kk
            self.register_buffer(f"weight_x{s}", weight_kk, persistent=False)
            self.register_buffer(f"norm_x{s}", 1 / total_TT, persistent=False)

    def cut(self, x_BCHW: torch.Tensor, scale: int) -> torch.Tensor:
        """B C sT sT -> (B g g) C sk sk: the sub-tiles of an output at `scale`, row after row."""
        k, at = self.side * scale, [start * scale for start in self.starts]
        parts = [x_BCHW[:, :, y : y + k, x : x + k] for y in at for x in at]
        return torch.stack(parts, 1).flatten(0, 1)

    def paste(self, x_nCkk: torch.Tensor, scale: int) -> torch.Tensor:
        """(B g g) C sk sk -> B C sT sT: `cut` undone, overlaps blended."""
        g, (n, C, k, _) = self.g, x_nCkk.shape
        if self.stride == self.side:  # side by side: every pixel is one sub-tile's
            x = x_nCkk.reshape(n // (g * g), g, g, C, k, k).permute(0, 3, 1, 4, 2, 5)
            return x.reshape(n // (g * g), C, g * k, g * k)
        size = self.tile * scale
        parts = (x_nCkk * getattr(self, f"weight_x{scale}")).unflatten(0, (-1, g * g))
        out, i = 0, 0
        for y in self.starts:
            for x in self.starts:
                y0, x0 = y * scale, x * scale
                out = out + F.pad(parts[:, i], (x0, size - x0 - k, y0, size - y0 - k))
                i += 1
        return out * getattr(self, f"norm_x{scale}")


class DetailSR(nn.Module):
    def __init__(
        self,
        detail: Detail,
        transformer: HVAR,
        tile: int,
        decode: tuple[int, ...] | None = None,
        stride: int | None = None,
    ):
        """decode: the outputs drawn from the tokens (default: all the tokenizer decodes, `Detail.decoded`);
        the others are the floor's (the tokens of every scale are drawn all the same). stride: LR px between
        sub-tiles (default the tokenizer's tile t: side by side; less: overlapping, blended, `SubTiles`)."""
        super().__init__()
        t = detail.cfg.tile
        self.grid = SubTiles(tile, t, t if stride is None else stride)
        self.decode = tuple(detail.decoded if decode is None else decode)
        if not self.decode or not set(self.decode) <= set(detail.decoded):
            raise ValueError(f"decode {self.decode}: the tokens decode to {detail.decoded}")
        if transformer.cfg.transformer.condition != "x4" or not transformer.tokenizer.same_tokens_as(
            detail.tokenizer
        ):
            raise ValueError("the transformer must be conditioned on the floor's x4, on the decoder's tokens")
        self.detail, self.transformer = detail.eval(), transformer.eval()
        self.g = self.grid.g
        self._tile = tile

    # The runner's model contract (`hvar.contract`).
    @property
    def tile(self) -> int:
        return self._tile

    @property
    def tokens(self) -> int:
        return self.g * self.g * self.transformer.tokens

    @property
    def overlap(self) -> int:
        """The floor's receptive radius: where a tile's blend weight is 1, the floor saw real context."""
        return min(self.detail.floor.receptive_radius, self.tile // 2)

    def guides(self, lr01_N3TT: torch.Tensor) -> list[torch.Tensor]:
        return self.detail.floor_outputs(lr01_N3TT)

    def sub_tiles(self, x4_N3HW: torch.Tensor) -> torch.Tensor:
        return self.grid.cut(x4_N3HW, 4)

    def render(self, guides: list[torch.Tensor], fhats: list[torch.Tensor]) -> list[torch.Tensor]:
        """The floor's outputs ([-1, 1]) and each sub-tile's running sums at the segment ends -> x1, x2,
        x4 in [0, 1]; the outputs not in `decode` are the floor's."""
        d = self.detail
        fhat_of = dict(zip(d.decoded, fhats[-len(d.decoded) :], strict=True))  # (N g g) Cvae h w each
        images = []
        for s, guide in zip(SCALES, guides, strict=True):
            if s in self.decode:
                z = d.tokenizer.post_quant_conv(fhat_of[s])
                guide = self.grid.paste(d.decoder(z, self.grid.cut(guide, s)), s)
            images.append(((guide + 1) / 2).clamp(0, 1))
        return images

    def forward(
        self, lr01_N3TT: torch.Tensor, noise_NL: torch.Tensor, temperature_1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model contract: lr in [0, 1], one uniform per token, temperature [1] (0 = greedy) ->
        x1, x2, x4 in [0, 1] and the tokens drawn (N, g*g*L)."""
        guides = self.guides(lr01_N3TT)
        noise_nl = noise_NL.reshape(-1, self.transformer.tokens)  # one row per sub-tile
        idx_list, fhats = self.transformer.draw(self.sub_tiles(guides[2]), noise_nl, temperature_1)
        x1, x2, x4 = self.render(guides, fhats)
        return x1, x2, x4, torch.cat(idx_list, dim=1).reshape(lr01_N3TT.shape[0], -1)

    @torch.no_grad()
    def decode_tokens(self, lr01_N3TT: torch.Tensor, tokens_NL: torch.Tensor) -> list[torch.Tensor]:
        spans = self.transformer.transformer.begin_ends
        idx_nl = tokens_NL.reshape(-1, self.transformer.tokens)
        fhats = self.detail.tokenizer.idx_to_fhats([idx_nl[:, b:e] for b, e in spans])
        return self.render(self.guides(lr01_N3TT), fhats)
