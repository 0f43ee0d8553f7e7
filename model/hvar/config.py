"""One config drives every model size (nanoGPT style).

`TokenizerConfig` describes HIT (the hierarchical multi-scale image tokenizer): the LR tile side T, the
VQ-VAE downsample factor f, the VAE widths, the codebook and the patch list. Everything else (segment
sides, tokens per segment, the total token count L) is derived, never stored, so it cannot disagree.
`TransformerConfig` describes the next-scale transformer and its loss; `HVARConfig` bundles the two.

Presets (see `PRESETS`): `tiny` (tests, trains in minutes on 2 CPU cores), `base` (the model shipped
first, about an hour of 2-core CPU training), `small` (LR 64 -> 256, about 10 minutes of one H200),
`paper` (LR 128 -> 512, the VAR-size VAE).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

SCALES = (1, 2, 4)  # output scales of the service: x1 (clean LR), x2, x4


@dataclass(frozen=True)
class TokenizerConfig:
    tile: int = 32  # LR tile side T in pixels; HR tile side is 4T
    f: int = 8  # VQ-VAE spatial downsample factor (a power of 2)
    ch: int = 32  # base width of encoder and decoder
    ch_mult: tuple[int, ...] = (1, 1, 2, 2)  # width multiplier per resolution level; len = log2(f) + 1
    num_res_blocks: int = 1  # per encoder level (the decoder has one more, as in VAR)
    norm_groups: int = 8  # GroupNorm groups; VAR uses 32, which needs wider layers than small presets
    cvae: int = 16  # latent / codebook vector width
    vocab_size: int = 512  # codebook size V, shared by every scale
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)  # token map sides, coarse to fine
    beta: float = 0.25  # commitment weight
    quant_resi: float = 0.5  # Phi(h) = (1 - r) h + r conv(h)
    share_quant_resi: int = 4  # number of partially shared Phi convs (VAR's default)
    hierarchical: bool = True  # HIT; False = plain VAR quantizer at full resolution (ablation baseline)
    lr_guided_decoder: bool = False  # decoder also sees skip features of the LR image (our option; see base)
    # Losses.
    grad_weight: float = 0.5  # image-gradient L1 term, a cheap stand-in for a perceptual loss
    lpips_path: str | None = None  # TorchScript LPIPS(x, y) module; used only if given (no downloads)
    lpips_weight: float = 0.0
    bypass_prob: float = 0.5  # HART: decode the continuous latent instead of the quantized one

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived quantities -------------------------------------------------------------------------
    @property
    def hr_tile(self) -> int:
        return SCALES[-1] * self.tile

    @property
    def image_sides(self) -> tuple[int, ...]:
        """Image side of each segment's output: T, 2T, 4T."""
        return tuple(s * self.tile for s in SCALES)

    @property
    def segment_ends(self) -> tuple[int, ...]:
        """Latent side at which each segment ends: T/f, 2T/f, 4T/f."""
        return tuple(side // self.f for side in self.image_sides)

    @property
    def segments(self) -> tuple[tuple[int, ...], ...]:
        """The patch list split after each segment end, e.g. (1,2,3,4), (5,6,8), (10,12,16)."""
        out, start = [], 0
        for end in self.segment_ends:
            stop = self.patch_nums.index(end) + 1
            out.append(tuple(self.patch_nums[start:stop]))
            start = stop
        return tuple(out)

    @property
    def segment_sides(self) -> tuple[int, ...]:
        """Latent side on which each segment quantizes: its own end for HIT, the full side for plain."""
        if self.hierarchical:
            return self.segment_ends
        return (self.segment_ends[-1],) * len(self.segment_ends)

    @property
    def decode_sides(self) -> tuple[int, ...]:
        """Image side each segment's partial sum decodes to (plain VAR always decodes at full size)."""
        return tuple(s * self.f for s in self.segment_sides)

    @property
    def num_scales(self) -> int:
        return len(self.patch_nums)

    @property
    def tokens_per_segment(self) -> tuple[int, ...]:
        return tuple(sum(p * p for p in seg) for seg in self.segments)

    @property
    def num_tokens(self) -> int:
        """L: tokens of one full tokenization (all segments)."""
        return sum(self.tokens_per_segment)

    @property
    def scale_segment(self) -> tuple[int, ...]:
        """Segment index of every scale in the patch list."""
        return tuple(n for n, seg in enumerate(self.segments) for _ in seg)

    @property
    def num_levels(self) -> int:
        return len(self.ch_mult)

    # ---- validation -----------------------------------------------------------------------------------
    def validate(self) -> None:
        def fail(msg: str) -> None:
            raise ValueError(f"TokenizerConfig: {msg}")

        if self.f < 2 or self.f & (self.f - 1):
            fail(f"f must be a power of 2 >= 2, got {self.f}")
        if len(self.ch_mult) != int(math.log2(self.f)) + 1:
            fail(f"ch_mult needs log2(f) + 1 = {int(math.log2(self.f)) + 1} levels, got {len(self.ch_mult)}")
        if self.tile < self.f or self.tile % self.f:
            fail(f"tile T={self.tile} must be a positive multiple of f={self.f}")
        for m in self.ch_mult:
            if (self.ch * m) % self.norm_groups:
                fail(f"width ch*mult={self.ch * m} is not divisible by norm_groups={self.norm_groups}")
        if self.vocab_size < 2:
            fail(f"vocab_size must be >= 2, got {self.vocab_size}")
        p = self.patch_nums
        if not p or p[0] < 1 or any(a >= b for a, b in zip(p, p[1:], strict=False)):
            fail(f"patch_nums must be strictly increasing positive sides, got {p}")
        ends = tuple(s // self.f for s in (k * self.tile for k in SCALES))
        missing = [e for e in ends if e not in p]
        if missing:
            fail(f"patch_nums {p} must contain every segment end {ends} (T/f, 2T/f, 4T/f); missing {missing}")
        if p[-1] != ends[-1]:
            fail(f"patch_nums must end at the full latent side {ends[-1]}, got {p[-1]}")
        if self.share_quant_resi < 1:
            fail("share_quant_resi must be >= 1")
        if not 0.0 <= self.bypass_prob <= 1.0:
            fail(f"bypass_prob must be in [0, 1], got {self.bypass_prob}")
        if self.lpips_weight > 0 and not self.lpips_path:
            fail("lpips_weight > 0 needs lpips_path (local TorchScript weights; nothing is downloaded)")


CONDITIONS = ("lr", "x1", "x4")  # TransformerConfig.condition


@dataclass(frozen=True)
class TransformerConfig:
    """The next-scale transformer (VAR's, conditioned on the LR image) and its training loss."""

    depth: int = 6
    width: int = 128  # C, the token width
    heads: int = 4
    mlp_ratio: float = 4.0
    top_k: int = 0  # sampling: keep the k most likely tokens (0 = the whole vocabulary)
    # Loss: CE(z_HR) + dpo_lambda * softplus(-dpo_beta * margin); dpo_mode "off", "simple" (the paper's:
    # margin = l(z_HR) - l(z_LR)) or "reference" (standard DPO against a frozen reference copy).
    dpo_mode: str = "simple"
    dpo_beta: float = 0.2
    dpo_lambda: float = 1.0
    # What the condition encodes: "lr" (the LR tile, upsampled to the HR side), or in the detail stage
    # (`hvar.detail`) the floor's "x1" (upsampled the same way) or its "x4" (at the HR side already).
    condition: str = "lr"
    # The image's own tokens as an input (the floor's, with condition "x4"): every position also sees the
    # token the image has there, and its logit gets a learned per-scale bonus, so the transformer starts
    # from copying what the floor knows and learns where to depart from it.
    hint: bool = False

    def __post_init__(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"TransformerConfig: width {self.width} must split into {self.heads} even heads")
        if self.dpo_mode not in ("off", "simple", "reference"):
            raise ValueError(f"TransformerConfig: dpo_mode is off, simple or reference, not {self.dpo_mode}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"TransformerConfig: condition is one of {CONDITIONS}, not {self.condition}")


@dataclass(frozen=True)
class HVARConfig:
    """The whole model: the tokenizer (HIT) and the transformer."""

    name: str = "base"
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> HVARConfig:
        tok = dict(d["tokenizer"])
        for k in ("ch_mult", "patch_nums"):
            tok[k] = tuple(tok[k])
        tr = TransformerConfig(**d.get("transformer", {}))  # tokenizer-only checkpoints have none
        return HVARConfig(name=d["name"], tokenizer=TokenizerConfig(**tok), transformer=tr)


@dataclass(frozen=True)
class FloorConfig:
    """The restoration stage (`hvar.floor`): SPAN's body with x1, x2 and x4 heads; with `stages` 2, a second
    SPAN of the same size makes x2 and x4 from x1 (restore, then upscale)."""

    name: str = "base"
    ch: int = 28  # feature width C (SPAN-ch28)
    blocks: int = 6  # SPAN blocks
    tile: int = 64  # LR tile side the export serves (the runner's tiles); any size trains and runs
    stages: int = 1  # 1: one body, three heads; 2: a restorer (x1), then an upscaler (x2, x4) fed x1
    upscaler_ch: int = 0  # two stages: the upscaler's width (0: ch, the restorer's)
    context: int = 0  # width of the tile-wide damage reading (`floor.DegradationContext`); 0: none
    x2_blocks: int = 0  # residual blocks of x2's own before its head (`floor.Residual`); 0: the head alone

    def __post_init__(self) -> None:
        if min(self.ch, self.blocks) < 1 or self.tile < 8 or self.stages not in (1, 2):
            raise ValueError(f"FloorConfig: ch, blocks >= 1, tile >= 8 and stages 1 or 2, got {self}")
        if min(self.upscaler_ch, self.context, self.x2_blocks) < 0:
            raise ValueError(f"FloorConfig: upscaler_ch, context and x2_blocks >= 0, got {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FLOOR_PRESETS: dict[str, FloorConfig] = {
    "tiny": FloorConfig(name="tiny", ch=8, blocks=2, tile=16),  # tests
    "base": FloorConfig(name="base", ch=28, blocks=6, tile=64),  # the published SPAN-ch28 body
    # SPAN-ch28 grown to 48 channels (`floor.widen`): 2.9x the compute, to measure what capacity buys on
    # realistic input (the base floor's realistic scores stop rising after ~6k GPU steps).
    "wide": FloorConfig(name="wide", ch=48, blocks=6, tile=64),
    # A base floor's restoration (x1) in front of SPAN-ch28 as published (x2, x4): clean input keeps
    # SPAN's quality, since x1 of a clean input is the input. Twice the compute and twice the receptive
    # radius (42), so it serves larger tiles to keep the overlap's share of the work small.
    "cascade": FloorConfig(name="cascade", ch=28, blocks=6, tile=192, stages=2),
    # The cascade with its restorer grown to 40 channels (`floor.grow`), SPAN-ch28 still upscaling: about
    # 1.5x the cascade's compute (the x4 speed target allows 1.8x), to measure what the restorer's
    # capacity buys on realistic and JPEG'd input.
    "cascade-wide": FloorConfig(name="cascade-wide", ch=40, blocks=6, tile=192, stages=2, upscaler_ch=28),
    # The cascade whose restorer also reads the whole tile's damage (`floor.DegradationContext`): on
    # realistic LR the local restorer stays 0.35-0.7 dB below a per-image oracle linear filter, and
    # knowing only how strongly to restore each photo would add up to 0.3 dB to x1
    # (model/checkpoints/floor-restore-heavy/ceiling-probe.md); the same restorer fine-tuned on each
    # photo's own damage gains over one tuned on any damage (known-damage-probe.md). Its reader can be
    # taught the damage first (`hvar.damage`, `train_floor --damage-reader`). A few percent more compute.
    "cascade-context": FloorConfig(name="cascade-context", ch=28, blocks=6, tile=192, stages=2, context=32),
    # The cascade whose x2 gets layers of its own: its head reads SPAN's x4 features through residual
    # blocks that x2 alone trains (`train_floor --x2-only`). The published SPAN has no x2 head, so the
    # cascade's is x4's averaged (x2 = x4 downscaled); refitting that head alone gives clean x2 up to
    # +0.15 dB, a block in front +0.29 (model/checkpoints/floor-restore-dense/x2-*-probe.json). A few
    # percent more compute. hvar 2.7.0 (model/checkpoints/floor-x2).
    "cascade-x2": FloorConfig(name="cascade-x2", ch=28, blocks=6, tile=192, stages=2, x2_blocks=1),
}


PRESETS: dict[str, TokenizerConfig] = {
    # LR 16 -> HR 64, latent sides 2, 4, 8: a forward/backward takes milliseconds.
    "tiny": TokenizerConfig(
        tile=16, f=8, ch=16, ch_mult=(1, 1, 2, 2), num_res_blocks=1, norm_groups=8, cvae=8,
        vocab_size=64, patch_nums=(1, 2, 3, 4, 6, 8),
    ),
    # LR 32 -> HR 128, latent sides 4, 8, 16. Sized for about an hour on shared CPU cores. LR-guided:
    # at this size and budget the faithful HIT reconstructs Set5 at 18.7 / 20.2 / 22.0 dB (x1/x2/x4),
    # the guided one at 32.1 / 30.8 / 28.6 (model/checkpoints/tok-base-compare.md).
    "base": TokenizerConfig(
        tile=32, f=8, ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, norm_groups=8, cvae=16,
        vocab_size=512, patch_nums=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16), lr_guided_decoder=True,
    ),
    # LR 64 -> HR 256, f=16, VAR's 256-px patch list.
    "small": TokenizerConfig(
        tile=64, f=16, ch=64, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, norm_groups=32, cvae=32,
        vocab_size=4096, patch_nums=(1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    ),
    # LR 128 -> HR 512, VAR's VAE (ch 160, ch_mult 1,1,2,2,4, Cvae 32, 4096 codes).
    "paper": TokenizerConfig(
        tile=128, f=16, ch=160, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, norm_groups=32, cvae=32,
        vocab_size=4096, patch_nums=(1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 24, 32),
    ),
}  # fmt: skip


TRANSFORMER_PRESETS: dict[str, TransformerConfig] = {
    "tiny": TransformerConfig(depth=2, width=64, heads=2, top_k=0),  # tests: milliseconds per step
    "base": TransformerConfig(depth=6, width=128, heads=4, top_k=0),  # sized for CPU training (1.9M)
    "small": TransformerConfig(depth=12, width=768, heads=12, top_k=900),
    "paper": TransformerConfig(depth=16, width=1024, heads=16, top_k=900),  # VAR-d16
}


def get_config(preset: str, **overrides) -> HVARConfig:
    """Preset by name, with optional TokenizerConfig field overrides (validated)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return HVARConfig(
        name=preset,
        tokenizer=dataclasses.replace(PRESETS[preset], **overrides),
        transformer=TRANSFORMER_PRESETS[preset],
    )
