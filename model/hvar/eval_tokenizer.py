"""Reconstruction quality of a trained tokenizer on Set5 / Set14, and the comparison of several runs.

Protocol. Each HR image is modcropped to a multiple of 4 and cut into HR tiles of side 4T, one every 4T
pixels and the last of a row/column aligned to the border (`hvar.tiling.tile_starts`, overlap 0), where
it overlaps its neighbour the two are averaged. Every tile is tokenized and each complete segment
decoded; the stitched images at x1, x2, x4 size (H/4, H/2, H) are compared with the HR image
area-downsampled to that size (the targets HIT is trained on), PSNR on Y with `scale` pixels
shaved (1, 2, 4), as `hvar.metrics` defines it. The plain (non-hierarchical) tokenizer decodes every
partial sum at full size; its x1 / x2 images are that decode area-downsampled. LR-guided decoders get
the MATLAB-bicubic LR of each tile, or with `guide="realistic"` their tile of the image's realistic LR
(`hvar.degrade.make_lr`, seed fixed per image). `tokens="lr"` decodes the tokens of the LR guide
upsampled bilinearly to the HR tile (z_LR, what the DPO term pushes the transformer away from) instead
of the HR tokens: the gap between the two is what the tokens contribute beyond the guide.
Codebook usage counts the codes chosen at least once over all tiles.

    python -m hvar.eval_tokenizer --run runs/tok-base-hit           # (re)evaluate one checkpoint
    python -m hvar.eval_tokenizer --run runs/tok-base-dg --guide realistic --tokens lr
    python -m hvar.eval_tokenizer --compare runs/tok-base-hit runs/tok-base-hit-lrg runs/tok-base-plain
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hvar import metrics
from hvar.config import SCALES
from hvar.data import dev_set, tensor_to_uint8, uint8_to_tensor
from hvar.degrade import DEGRADATIONS, bicubic_lr, make_lr
from hvar.eval import image_rng
from hvar.resize import area_down, resize_with
from hvar.sr import bilinear_matrix
from hvar.tiling import tile_starts
from hvar.tokenizer import HIT, load_hit

DEV_SETS = ("Set5", "Set14")
TOKEN_SOURCES = ("hr", "lr")


@torch.no_grad()
def reconstruct(
    model: HIT,
    hr_HWC: np.ndarray,
    batch: int = 16,
    lr_HWC: np.ndarray | None = None,
    tokens: str = "hr",
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Stitched reconstructions (uint8) at x1, x2, x4 size of one uint8 image (modcropped to 4), and the
    codebook hits per scale over its tiles. `lr_HWC` (the whole image's LR, H/4 x W/4) replaces each
    tile's bicubic LR as the guide; `tokens="lr"` tokenizes the upsampled guide instead of the HR tile."""
    cfg = model.cfg
    t4 = cfg.hr_tile
    H, W = (hr_HWC.shape[0] // 4) * 4, (hr_HWC.shape[1] // 4) * 4
    if min(H, W) < t4:
        raise ValueError(f"image {H}x{W} is smaller than the HR tile {t4}")
    hr = hr_HWC[:H, :W]
    up = bilinear_matrix(cfg.tile, t4)
    boxes = [(y, x) for y in tile_starts(H, t4, 0) for x in tile_starts(W, t4, 0)]
    sums = [torch.zeros(3, H // (4 // s), W // (4 // s)) for s in SCALES]
    counts = [torch.zeros(1, H // (4 // s), W // (4 // s)) for s in SCALES]
    hits = torch.zeros(cfg.num_scales, cfg.vocab_size)
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        tiles = [hr[y : y + t4, x : x + t4] for y, x in chunk]
        img = torch.stack([uint8_to_tensor(t) for t in tiles])
        if lr_HWC is None:
            lr_tiles = [bicubic_lr(np.ascontiguousarray(t), 4) for t in tiles]
        else:
            lr_tiles = [lr_HWC[y // 4 : (y + t4) // 4, x // 4 : (x + t4) // 4] for y, x in chunk]
        lr = torch.stack([uint8_to_tensor(t) for t in lr_tiles])
        q = model.quantizer(model.encode(img if tokens == "hr" else resize_with(lr, up, up)))
        hits += q.hits_SV.float()
        imgs = model.idx_to_imgs(q.idx, lr if cfg.lr_guided_decoder else None)
        for n, s in enumerate(SCALES):
            rec = imgs[n] if cfg.hierarchical else area_down(imgs[n], 4 // s)
            d = 4 // s
            for b, (y, x) in enumerate(chunk):
                ys, xs, side = y // d, x // d, t4 // d
                sums[n][:, ys : ys + side, xs : xs + side] += rec[b]
                counts[n][:, ys : ys + side, xs : xs + side] += 1
    outs = [tensor_to_uint8(s / c) for s, c in zip(sums, counts, strict=True)]
    return outs, hits


def targets(hr_HWC: np.ndarray) -> list[np.ndarray]:
    """The HR image (modcropped to 4) area-downsampled to x1, x2, x4 size, uint8."""
    H, W = (hr_HWC.shape[0] // 4) * 4, (hr_HWC.shape[1] // 4) * 4
    x = uint8_to_tensor(hr_HWC[:H, :W])[None]
    return [tensor_to_uint8(area_down(x, 4 // s)[0]) for s in SCALES]


def evaluate(
    model: HIT, sets: tuple[str, ...] = DEV_SETS, guide: str = "bicubic", tokens: str = "hr"
) -> dict:
    """PSNR-Y per set and segment (x1, x2, x4), and codebook usage (overall and per scale)."""
    if guide not in DEGRADATIONS or tokens not in TOKEN_SOURCES:
        raise ValueError(f"guide is one of {DEGRADATIONS} and tokens one of {TOKEN_SOURCES}")
    if (guide, tokens) != ("bicubic", "hr") and not model.cfg.lr_guided_decoder:
        raise ValueError("guide / tokens options need an LR-guided decoder")
    model.eval()
    cfg = model.cfg
    result: dict = {"psnr_y": {}, "per_image": {}}
    hits = torch.zeros(cfg.num_scales, cfg.vocab_size)
    for name in sets:
        scores = {f"x{s}": [] for s in SCALES}
        for stem, hr in dev_set(name):
            lr = None
            if guide == "realistic":
                hr4 = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
                lr = make_lr(hr4, 4, "realistic", image_rng(stem, 4, 0))
            recs, h = reconstruct(model, hr, lr_HWC=lr, tokens=tokens)
            hits += h
            for s, rec, tgt in zip(SCALES, recs, targets(hr), strict=True):
                scores[f"x{s}"].append(metrics.psnr_y(rec, tgt, shave=s))
            result["per_image"][f"{name}/{stem}"] = {k: v[-1] for k, v in scores.items()}
        result["psnr_y"][name] = {k: float(np.mean(v)) for k, v in scores.items()}
    used_SV = hits > 0
    result["usage"] = float(used_SV.any(0).float().mean())
    result["usage_per_scale"] = {
        str(pn): float(u) for pn, u in zip(cfg.patch_nums, used_SV.float().mean(1), strict=True)
    }
    return result


def report_markdown(title: str, info: dict, ev: dict) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "| set | x1 PSNR-Y | x2 PSNR-Y | x4 PSNR-Y |", "| --- | --- | --- | --- |"]
    for name, d in ev["psnr_y"].items():
        lines.append(f"| {name} | {d['x1']:.2f} | {d['x2']:.2f} | {d['x4']:.2f} |")
    lines += ["", f"Codebook usage over Set5+Set14 tiles: {100 * ev['usage']:.1f}% of codes", ""]
    lines += ["| scale (pn) | " + " | ".join(ev["usage_per_scale"]) + " |"]
    lines += ["| --- " * (len(ev["usage_per_scale"]) + 1) + "|"]
    lines += ["| usage % | " + " | ".join(f"{100 * u:.0f}" for u in ev["usage_per_scale"].values()) + " |"]
    return "\n".join(lines) + "\n"


def compare_markdown(runs: list[Path]) -> str:
    """One table over several runs' report.json (the tokenizer ablation)."""
    head = "| run | mode | LR-guided | steps | train min | "
    head += " | ".join(f"{s} {x}" for s in DEV_SETS for x in ("x1", "x2", "x4")) + " | usage % |"
    lines = [head, "| --- " * (5 + 3 * len(DEV_SETS) + 1) + "|"]
    for run in runs:
        rep = json.loads((Path(run) / "report.json").read_text())
        tok = rep["config"]["tokenizer"]
        ps = rep["eval"]["psnr_y"]
        cells = [f"{ps[s][x]:.2f}" for s in DEV_SETS for x in ("x1", "x2", "x4")]
        mode = "HIT" if tok["hierarchical"] else "plain VAR"
        lines.append(
            f"| {Path(run).name} | {mode} | {'yes' if tok['lr_guided_decoder'] else 'no'} | {rep['step']} | "
            f"{rep['train_minutes']:.0f} | " + " | ".join(cells) + f" | {100 * rep['eval']['usage']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run folder with model.safetensors + config.json: evaluate it")
    ap.add_argument("--compare", nargs="+", help="run folders with report.json: print one table")
    ap.add_argument("--out", help="also write the comparison table to this markdown file")
    ap.add_argument("--guide", choices=DEGRADATIONS, default="bicubic", help="LR-guided decoders: the guide")
    ap.add_argument("--tokens", choices=TOKEN_SOURCES, default="hr", help="decode HR or LR-image tokens")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run:
        model, _ = load_hit(args.run)
        if (args.guide, args.tokens) != ("bicubic", "hr") and not model.cfg.lr_guided_decoder:
            ap.error("--guide / --tokens need a tokenizer with an LR-guided decoder")
        ev = evaluate(model, guide=args.guide, tokens=args.tokens)
        print(json.dumps({k: ev[k] for k in ("psnr_y", "usage")}, indent=2))
    if args.compare:
        table = compare_markdown([Path(r) for r in args.compare])
        print(table)
        if args.out:
            Path(args.out).write_text(table)
    if not (args.run or args.compare):
        ap.error("give --run or --compare")


if __name__ == "__main__":
    main()
