"""The restoration stage ("the floor"): a fast SR network at LR resolution that gives x1, x2 and x4.

Its body is SPAN (Swift Parameter-free Attention Network; Wan et al., 2024, the NTIRE 2024 efficient-SR
winner), written from the description in `../shared/pretrained/README.md` so that the published
weights (MIT) load as they are. Three pixel-shuffle heads read the same features:

    lr (T x T, [0, 1]) -> (lr - mean) * 255 -> conv_1 -> 6 SPAN blocks -> conv_2 -> conv_cat (1x1) -> feat
    feat -> head_1 (C -> 3)  + lr   -> x1 (T)       the input cleaned: a correction of the input
    feat -> head_2 (C -> 12), PS(2) -> x2 (2T)      (`x2_blocks` residual blocks of its own before head_2)
    feat -> head_4 (C -> 48), PS(4) -> x4 (4T)      SPAN's own upsampler

`from_span` starts x2 from the pretrained x4 head: the area average of x4's sub-pixels is a linear function
of the features, so head_2 is the mean of head_4's weights over each 2x2 group of sub-pixels, and x2 begins
at x4 downscaled instead of noise; blocks of x2's own (`FloorConfig.x2_blocks`) start as the identity and
let x2 read SPAN's x4 features its own way (`train_floor --x2-only`). head_1 starts at zero, so x1 begins
as the input itself: a clean input must come out as it went in, and training only learns what to remove.
Every conv is 3x3 except conv_cat, so the network is purely local (receptive field `receptive_radius` LR
pixels).

With two stages (`FloorConfig.stages`, preset `cascade`) the first network keeps only head_1, and a second
SPAN (`upscaler`, its own body with head_2 and head_4) upscales x1 instead of the input:

    lr -> body -> head_1 + lr -> x1 -> upscaler body -> head_2, head_4 -> x2, x4

so restoration and upscaling each get a whole network. Started from a trained floor's restoration and the
published SPAN (`cascade`), a clean input (x1 = the input) is upscaled by SPAN itself.

With `FloorConfig.context` the network also reads the whole tile once (`DegradationContext`): the mean
of strided features of the LR (`DamageReader`, which `hvar.damage` teaches to read the damage rather
than the photo) scales and shifts each block's input (FiLM). A local network sees
about 20 LR px around a pixel and must guess there how the photo was damaged; the tile as a whole tells
it. Outputs then depend on the tile's content beyond the receptive radius, a little: tiles of one photo
share its damage, and the overlap's blend hides what differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .config import SCALES, FloorConfig

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's channel means, as SPAN was trained


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class SPANBlock(nn.Module):
    """Parameter-free attention: the block's own output, through sigmoid - 0.5, gates it."""

    def __init__(self, ch: int):
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = conv3(ch, ch), conv3(ch, ch), conv3(ch, ch)

    def forward(self, x_BCHW: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The handout is the first conv's output *after* its SiLU: the reference applies SiLU in place,
        # so the tensor it returns is the activated one (with the raw one, Set5 x4 falls to 16 dB).
        a = F.silu(self.c1_r(x_BCHW))
        b = self.c3_r(F.silu(self.c2_r(a)))
        return (b + x_BCHW) * (torch.sigmoid(b) - 0.5), a  # output, and the handout for conv_cat


class Residual(nn.Module):
    """x + conv(silu(conv(x))); the second conv starts at zero, so a new block changes nothing at first."""

    def __init__(self, C: int):
        super().__init__()
        self.c1, self.c2 = conv3(C, C), conv3(C, C)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        return x_BCHW + self.c2(F.silu(self.c1(x_BCHW)))


class DamageReader(nn.Module):
    """How a tile was damaged, read from the LR itself: local statistics averaged over the whole tile.
    `hvar.damage` teaches it to measure the damage rather than the photo."""

    def __init__(self, width: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(),
        )  # fmt: skip
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, lr01_B3HW: torch.Tensor) -> torch.Tensor:
        # in units of 16 levels: near unit scale for the default init, and a few levels of noise still show
        x = (lr01_B3HW - self.mean) * (255.0 / 16)
        return self.convs(x).mean(dim=(2, 3))  # B W: the whole tile, whatever its size


class DegradationContext(nn.Module):
    """The tile's damage (`DamageReader`): per block, a scale and a shift of its input."""

    def __init__(self, ch: int, width: int, blocks: int):
        super().__init__()
        self.blocks, self.ch = blocks, ch
        self.read = DamageReader(width)
        self.film = nn.Linear(width, 2 * blocks * ch)
        nn.init.zeros_(self.film.weight)  # at the start every scale is 1 and every shift 0: no change
        nn.init.zeros_(self.film.bias)

    def forward(self, lr01_B3HW: torch.Tensor) -> torch.Tensor:
        film_BF = self.film(self.read(lr01_B3HW))
        return film_BF.unflatten(1, (self.blocks, 2, self.ch))[..., None, None]  # B n 2 C 1 1


class Floor(nn.Module):
    def __init__(self, cfg: FloorConfig, scales: tuple[int, ...] = SCALES):
        super().__init__()
        self.cfg = cfg
        C = cfg.ch
        two_stage = cfg.stages == 2
        # the second stage: a one-stage floor of the same size without an x1 head
        upscaler = dataclasses.replace(cfg, stages=1, ch=cfg.upscaler_ch or C, upscaler_ch=0, context=0)
        self.upscaler = Floor(upscaler, scales=(2, 4)) if two_stage else None
        scales = (1,) if two_stage else scales
        self.conv_1 = conv3(3, C)
        self.blocks = nn.ModuleList(SPANBlock(C) for _ in range(cfg.blocks))
        self.conv_2 = conv3(C, C)
        self.conv_cat = nn.Conv2d(4 * C, C, 1)
        self.heads = nn.ModuleDict({f"x{s}": conv3(C, 3 * s * s) for s in scales})
        self.x2_body = nn.Sequential(*(Residual(C) for _ in range(cfg.x2_blocks if 2 in scales else 0)))
        self.context = DegradationContext(C, cfg.context, cfg.blocks) if cfg.context else None
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)

    # The runner's model contract (`hvar.contract`): a tile side, and no noise inputs.
    @property
    def tile(self) -> int:
        return self.cfg.tile

    tokens = 0  # no generated detail: the floor is deterministic

    @property
    def cleanup(self) -> bool:
        """Whether the clean-up strength can be chosen: in a two-stage floor, x1 (the input plus the
        restorer's correction) is what the upscaler sees, so scaling the correction scales the clean-up
        of every output; a one-stage floor upscales from the raw input's features."""
        return self.upscaler is not None

    @property
    def receptive_radius(self) -> int:
        """LR pixels on each side that can change an output pixel: one per 3x3 conv on the path (the
        context's tile-wide mean aside)."""
        one = 1 + 3 * self.cfg.blocks + 1 + 1 + 2 * len(self.x2_body)
        return one + (self.upscaler.receptive_radius if self.upscaler is not None else 0)

    @property
    def overlap(self) -> int:
        """Tiles share the receptive radius (at most half a tile), so wherever a tile's blend weight is 1 its
        output never saw the tile's zero padding."""
        return min(self.receptive_radius, self.tile // 2)

    def features(self, lr01_B3HW: torch.Tensor) -> torch.Tensor:
        x = (lr01_B3HW - self.mean) * 255.0
        f0 = self.conv_1(x)
        film = self.context(lr01_B3HW) if self.context is not None else None  # B n 2 C 1 1
        h, first, a = f0, None, None
        for i, block in enumerate(self.blocks):
            if film is not None:
                h = h * (1 + film[:, i, 0]) + film[:, i, 1]
            h, a = block(h)
            first = h if first is None else first
        return self.conv_cat(torch.cat([f0, self.conv_2(h), first, a], dim=1))  # B C H W

    def forward(
        self,
        lr01_B3HW: torch.Tensor,
        noise: torch.Tensor | None = None,
        temperature: torch.Tensor | None = None,
        cleanup: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model contract (`hvar.contract`) for a model that draws nothing: LR in [0, 1] -> x1, x2, x4
        in [0, 1] (unclamped while training). noise / temperature are accepted and unused, so that the
        evaluation calls every model alike. `cleanup` (shape (1,), in [0, 1]; a two-stage floor only)
        scales the restorer's correction: 1 or None as trained, 0 leaves x1 the input, so that x2 and
        x4 upscale the input as it is (a photo's own grain kept)."""
        feat = self.features(lr01_B3HW)
        x1 = self.restore(lr01_B3HW, feat, cleanup)  # B 3 T T
        if self.upscaler is None:
            x2, x4 = self.upsample(feat)
        else:  # the upscaler sees x1 as the runner would show it: in [0, 1]
            x2, x4 = self.upscaler.upsample(self.upscaler.features(x1.clamp(0, 1)))
        if not self.training:
            x1, x2, x4 = (x.clamp(0, 1) for x in (x1, x2, x4))
        return x1, x2, x4

    def restore(
        self,
        lr01_B3HW: torch.Tensor,
        feat_BCHW: torch.Tensor | None = None,
        cleanup: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x1 (B 3 H W, unclamped): the input plus the correction head_1 reads from its features, times
        `cleanup` where one is given."""
        feat_BCHW = self.features(lr01_B3HW) if feat_BCHW is None else feat_BCHW
        correction = self.heads["x1"](feat_BCHW)
        return lr01_B3HW + (correction if cleanup is None else cleanup.view(1, 1, 1, 1) * correction)

    def upsample(self, feat_BCHW: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x2 (B 3 2H 2W) and x4 (B 3 4H 4W) from the features, by pixel shuffle."""
        x2 = F.pixel_shuffle(self.heads["x2"](self.x2_body(feat_BCHW)), 2)
        x4 = F.pixel_shuffle(self.heads["x4"](feat_BCHW), 4)
        return x2, x4


# ---- the pretrained SPAN ----------------------------------------------------------------------------------
def span_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The published checkpoint (re-parameterized convs under `<name>.eval_conv`) in this module's names."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for k, v in sd.items():
        k = k.replace(".eval_conv", "").replace("upsampler.0", "heads.x4")
        if k.startswith("block_"):
            n, rest = k.split(".", 1)
            k = f"blocks.{int(n.removeprefix('block_')) - 1}.{rest}"
        out[k] = v
    return out


def subpixel_mean(w: torch.Tensor, s_from: int, s_to: int) -> torch.Tensor:
    """Weights (or bias) of a pixel-shuffle head at scale s_to that outputs the area average of the head
    at s_from: channel c*s_to^2 + a*s_to + b averages the (s_from/s_to)^2 sub-pixels under (a, b)."""
    r = s_from // s_to
    x = w.reshape(3, s_to, r, s_to, r, *w.shape[1:])  # c, a, i', b, j' (sub-pixel i = a*r + i')
    return x.mean(dim=(2, 4)).reshape(3 * s_to * s_to, *w.shape[1:])


def from_span(cfg: FloorConfig, path: str | Path) -> Floor:
    """A floor whose body and x4 head are the pretrained SPAN, x2 derived from x4, x1 the identity; a wider
    preset holds SPAN in its first channels (`widen`) and computes what SPAN computes until it trains."""
    if cfg.stages == 2:  # SPAN twice: an identity restorer (x1 starts at the input), SPAN upscaling it
        one = dataclasses.replace(cfg, stages=1, upscaler_ch=0)
        upscaler = from_span(dataclasses.replace(one, ch=cfg.upscaler_ch or cfg.ch, context=0), path)
        return cascade(from_span(one, path), upscaler, cfg)
    state = span_state(path)
    for name in ("weight", "bias"):
        state[f"heads.x2.{name}"] = subpixel_mean(state[f"heads.x4.{name}"], 4, 2)
        state[f"heads.x1.{name}"] = torch.zeros_like(subpixel_mean(state[f"heads.x4.{name}"], 4, 1))
    model = Floor(cfg)
    model.load_state_dict(widen(state, model.state_dict()))
    return model


def cascade(restorer: Floor, upscaler: Floor, cfg: FloorConfig) -> Floor:
    """A two-stage floor (`cfg.stages` 2) from one-stage floors of its width: `restorer`'s body and x1 head,
    then `upscaler`'s body with its x2 and x4 heads."""
    model = Floor(cfg)
    upscaling = ("heads.x2", "heads.x4", "x2_body.")
    state = {k: v for k, v in restorer.state_dict().items() if not k.startswith(upscaling)}
    state |= {f"upscaler.{k}": v for k, v in upscaler.state_dict().items() if not k.startswith("heads.x1")}
    model.load_state_dict(state)
    return model


def grow(model: Floor, cfg: FloorConfig) -> Floor:
    """`model` grown to the wider `cfg` (`widen`): the same outputs, more channels free to train. A
    cascade grows its restorer; its upscaler keeps its width (the same `upscaler_ch`) and gains only the
    parts `cfg` adds (x2's blocks), which change nothing at first."""
    wide = Floor(cfg)
    if (model.upscaler is None) != (wide.upscaler is None):
        raise ValueError(f"grow: {model.cfg.name} and {cfg.name} differ in stages")
    if wide.upscaler is not None and wide.upscaler.cfg.ch != model.upscaler.cfg.ch:
        raise ValueError("grow: a cascade grows its restorer only; the upscaler keeps its width")
    if cfg.x2_blocks < model.cfg.x2_blocks:
        raise ValueError(f"grow: {cfg.name} has fewer x2 blocks than {model.cfg.name}; they would be lost")

    def restorer(m: Floor) -> dict[str, torch.Tensor]:
        return {k: v for k, v in m.state_dict().items() if not k.startswith("upscaler.")}

    state = widen(restorer(model), restorer(wide))
    if model.upscaler is not None:
        upscaler = widen(model.upscaler.state_dict(), wide.upscaler.state_dict())
        state |= {f"upscaler.{k}": v for k, v in upscaler.items()}
    wide.load_state_dict(state)
    return wide


def widen(
    narrow: dict[str, torch.Tensor], wide: dict[str, torch.Tensor], scale: float = 0.1
) -> dict[str, torch.Tensor]:
    """A wider floor's weights that compute exactly what the narrow floor computes (Net2Net-style growth).

    The narrow network's channels are the first C of each feature map. Weights from the new channels into
    the old ones (and into the heads) are zero, so every old channel and every output is unchanged; the new
    channels keep `wide`'s random weights from every input, scaled by `scale`, so they carry signal from the
    first step and gradients reach their outgoing weights (all-zero new channels would never train).
    `wide` is a freshly initialized state of the wider floor (same blocks); equal widths copy `narrow`."""
    C = narrow["conv_1.weight"].shape[0]
    Cw = wide["conv_1.weight"].shape[0]
    if Cw < C:
        raise ValueError(f"widen: the floor is narrower ({Cw}) than the weights ({C})")
    out = {}
    for k, w in wide.items():
        if k not in narrow:  # a part the narrow floor lacks (the context): as initialized, a no-op at first
            out[k] = w.clone()
            continue
        n = narrow[k]
        if n.shape == w.shape:
            out[k] = n.clone()
            continue
        groups = 4 if k.startswith("conv_cat") and k.endswith("weight") else 1  # concat of 4 C-wide maps
        g = w.clone() * scale
        if k.endswith("bias"):
            g[:C] = n
            g[C:] = 0.0
            out[k] = g
            continue
        rows, cols = n.shape[0], n.shape[1] // groups  # old outputs (C, or 3 s^2 for a head), old inputs
        g[:rows] = 0.0  # the old outputs read only the old inputs
        for i in range(groups):
            g[:rows, i * Cw : i * Cw + cols] = n[:, i * C : i * C + cols]
        out[k] = g
    return out


# ---- files ------------------------------------------------------------------------------------------------
WEIGHTS_FILE, CONFIG_FILE = "floor.safetensors", "floor.json"
READER_FILE = "reader.safetensors"  # a `DamageReader` taught by `hvar.damage`


def save_floor(model: Floor, folder: str | Path) -> None:
    """Weights and config in `folder`, written atomically (a crash never leaves half a checkpoint)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, folder / (WEIGHTS_FILE + ".tmp"))
    (folder / (CONFIG_FILE + ".tmp")).write_text(json.dumps(model.cfg.to_dict(), indent=2))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)


def load_floor(folder: str | Path) -> Floor:
    folder = Path(folder)
    model = Floor(FloorConfig(**json.loads((folder / CONFIG_FILE).read_text())))
    model.load_state_dict(load_file(folder / WEIGHTS_FILE))
    return model.eval()


def load_reader(folder: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a `DamageReader` that `hvar.damage` taught."""
    return load_file(Path(folder) / READER_FILE)
