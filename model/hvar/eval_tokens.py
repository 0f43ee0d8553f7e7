"""What the transformer has learned about tokens, on held-out tiles: the DPO ablation measured directly.

For every HR tile of the dev sets (side 4T, cut without overlap) and each degradation, the LR tile is
made by `hvar.degrade.make_lr` (realistic with a seed fixed per tile), and under teacher forcing we
score
  * l(z_HR), l(z_LR): mean per-token log-likelihood of the HR tile's tokens and of the LR tile's
    (upsampled bilinearly), the two sequences of the DPO term, and their margin l(z_HR) - l(z_LR);
  * CE and next-token accuracy on z_HR per segment (x1, x2, x4 tokens).
A run trained without DPO is scored the same way (its config is only read for the tokenizer).

    python -m hvar.eval_tokens --run runs/hvar-base-dg runs/hvar-base-dg-nodpo --md runs/tokens.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from hvar.data import dev_set, uint8_to_tensor
from hvar.degrade import DEGRADATIONS, make_lr
from hvar.dpo import loss_on_batch
from hvar.eval import image_rng
from hvar.sr import HVAR, load_hvar


def dev_tiles(side: int, sets: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 tile) of every non-overlapping side x side tile of the dev sets' HR images."""
    out = []
    for name in sets:
        for stem, hr in dev_set(name):
            for y in range(0, hr.shape[0] - side + 1, side):
                for x in range(0, hr.shape[1] - side + 1, side):
                    tile = np.ascontiguousarray(hr[y : y + side, x : x + side])
                    out.append((f"{name}/{stem}/{y}/{x}", tile))
    return out


@torch.no_grad()
def token_stats(model: HVAR, sets: tuple[str, ...] = ("Set5", "Set14"), batch: int = 16) -> dict:
    """{degradation: {l_hr, l_lr, margin, ce, ce_seg*, acc_seg*}} averaged over the tiles (per tile)."""
    tcfg = dataclasses.replace(model.cfg.transformer, dpo_mode="simple", dpo_lambda=1.0)
    scoring = HVAR(dataclasses.replace(model.cfg, transformer=tcfg), model.tokenizer)
    scoring.transformer.load_state_dict(model.transformer.state_dict())
    scoring.eval()
    tiles = dev_tiles(model.cfg.tokenizer.hr_tile, sets)
    result = {}
    for degradation in DEGRADATIONS:
        sums: dict[str, float] = {}
        for i in range(0, len(tiles), batch):
            chunk = tiles[i : i + batch]
            hr = torch.stack([uint8_to_tensor(t) for _, t in chunk])
            lrs = [make_lr(t, 4, degradation, image_rng(n, 4, 0)) for n, t in chunk]
            lr = torch.stack([uint8_to_tensor(t) for t in lrs])
            _, logs = loss_on_batch(scoring.transformer, scoring, hr, lr)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v * len(chunk)
        per_segment = tuple(k for k in sums if k.startswith(("ce_seg", "acc_seg")))
        keep = ("l_hr", "l_lr", "margin", "ce") + per_segment
        result[degradation] = {k: sums[k] / len(tiles) for k in keep}
    result["tiles"] = len(tiles)
    return result


def markdown(named: dict[str, dict]) -> str:
    lines = [
        "| run | LR | l(z_HR) | l(z_LR) | margin | CE | accuracy x1 / x2 / x4 tokens |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, st in named.items():
        for d in DEGRADATIONS:
            s = st[d]
            acc = " / ".join(f"{s[f'acc_seg{n}']:.3f}" for n in range(3))
            ll = f"{s['l_hr']:.3f} | {s['l_lr']:.3f} | {s['margin']:+.3f}"
            lines.append(f"| {name} | {d} | {ll} | {s['ce']:.3f} | {acc} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", nargs="+", required=True, help="H-VAR run folders")
    ap.add_argument("--dataset", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    missing = [r for r in args.run if not Path(r, "model.safetensors").is_file()]
    if missing:
        ap.error(f"not a run folder (no model.safetensors): {', '.join(missing)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.nnpack.set_flags(False)
    named = {Path(r).name: token_stats(load_hvar(r), tuple(args.dataset)) for r in args.run}
    md = markdown(named)
    print(md, end="")
    if args.md:
        args.md.write_text(md)
    if args.json:
        args.json.write_text(json.dumps(named, indent=2) + "\n")
    return named


if __name__ == "__main__":
    main()
