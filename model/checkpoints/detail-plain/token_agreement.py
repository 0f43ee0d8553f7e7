"""How predictable are each tokenizer's detail tokens? Agreement of the floor's own x4 tokens with the HR's.

A transformer conditioned on the floor starts from what the floor already knows: where the tokens of
the floor's x4 tile equal the HR tile's, it has nothing to predict. So the share of tokens that differ
says how much a transformer must learn. For each detail run, over
Set5 and Set14 at realistic and bicubic x4 LR, tiles cut as `eval_detail` cuts them (LR side T,
overlap T/4), this prints per scale the share of the floor's x4 tokens equal to the HR's, and the mean
over all L tokens. Output: token-agreement.txt (Set5 about 3 min on 2 cores for two runs; Set14 more).

    cd model && .venv/bin/python checkpoints/detail-plain/token_agreement.py \
        checkpoints/detail-base checkpoints/detail-plain
"""

import sys

import numpy as np
import torch

from hvar.data import dev_set, uint8_to_tensor
from hvar.degrade import make_lr, modcrop
from hvar.detail import Detail, load_detail
from hvar.eval import image_rng
from hvar.tiling import cut_tile, tile_starts


@torch.no_grad()
def agreement(model: Detail, name: str, degradation: str) -> np.ndarray:
    """Per scale: the share of the floor's x4 tile tokens equal to the HR tile's, over the set's tiles."""
    T = model.cfg.tile
    same, total = np.zeros(model.cfg.num_scales), np.zeros(model.cfg.num_scales)
    for stem, hr in dev_set(name):
        hr = modcrop(hr, 4)
        lr = make_lr(hr, 4, degradation, image_rng(stem, 4, 0) if degradation == "realistic" else None)
        x4 = model.floor_outputs(uint8_to_tensor(lr)[None] / 2 + 0.5)[2][0].permute(1, 2, 0).numpy()
        ys, xs = tile_starts(lr.shape[0], T, T // 4), tile_starts(lr.shape[1], T, T // 4)
        starts = [(y, x) for y in ys for x in xs]
        hr_tiles = torch.stack([uint8_to_tensor(cut_tile(hr, 4 * y, 4 * x, 4 * T)) for y, x in starts])
        floor_tiles = torch.stack(
            [torch.from_numpy(np.ascontiguousarray(cut_tile(x4, 4 * y, 4 * x, 4 * T))) for y, x in starts]
        ).permute(0, 3, 1, 2)
        for si, (a, b) in enumerate(zip(model.tokens(hr_tiles), model.tokens(floor_tiles), strict=True)):
            same[si] += float((a == b).sum())
            total[si] += a.numel()
    return same / total


def main(runs: list[str]) -> None:
    torch.set_num_threads(2)
    models = {run: load_detail(run) for run in runs}
    for name in ("Set5", "Set14"):
        for degradation in ("realistic", "bicubic"):
            for run, model in models.items():
                share = agreement(model, name, degradation)
                weights = np.array([p * p for p in model.cfg.patch_nums]) / model.cfg.num_tokens
                per_scale = " ".join(f"{s:.2f}" for s in share)
                print(f"{name} {degradation} {run}: all {float(share @ weights):.3f} | per scale {per_scale}")


if __name__ == "__main__":
    main(sys.argv[1:])
