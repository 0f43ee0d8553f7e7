"""Small random models shared by the transformer tests (tiny preset, seconds on one thread)."""

import torch

from hvar.config import get_config
from hvar.sr import HVAR


def random_hvar(seed: int = 0, spread: float = 0.3, tokenizer: dict | None = None, **transformer) -> HVAR:
    """Tiny H-VAR with a spread codebook (non-trivial tokens) and, with `spread`, every transformer
    weight redrawn so that the blocks are far from VAR's near-identity initialisation."""
    import dataclasses

    cfg = get_config("tiny", **(tokenizer or {}))
    if transformer:
        cfg = dataclasses.replace(cfg, transformer=dataclasses.replace(cfg.transformer, **transformer))
    torch.manual_seed(seed)
    model = HVAR(cfg).eval()
    torch.nn.init.normal_(model.tokenizer.quantizer.embedding.weight, std=0.5)
    if spread:
        with torch.no_grad():
            for p in model.transformer.parameters():
                p.normal_(0, spread)
    return model


def images(cfg, batch: int = 2, seed: int = 0, side: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    side = side or cfg.tokenizer.hr_tile
    return torch.rand(batch, 3, side, side, generator=g) * 2 - 1
