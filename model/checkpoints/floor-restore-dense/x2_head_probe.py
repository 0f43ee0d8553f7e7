"""Is the served floor's x2 head worth training? It was never trained for x2: `floor.from_span` derives it
as the area average of SPAN's x4 head (x2 = x4 downscaled), and every later run kept the upscaler frozen.

The head is one 3x3 conv on the upscaler's features, so with everything before it frozen its best L2 fit
is a least-squares problem: features of the cached pairs' x1 (the restorer's output, as served), the x2
target pixel-unshuffled to 12 channels per LR pixel. This fits it on the centre of each crop (the edge
features saw the crop's zero padding), puts it in the floor and scores x2 on the dev sets beside the
derived head, through the same tiling as the runner.

    cd model && .venv/bin/python checkpoints/floor-restore-dense/x2_head_probe.py --pairs .data/pairs-dense
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar.eval_sr import evaluate
from hvar.floor import load_floor
from hvar.pairs import Pairs

HERE = Path(__file__).parent
MARGIN = 8  # LR pixels dropped on each side of a 48 px crop


def head_inputs(model, lr_B3HW: torch.Tensor) -> torch.Tensor:
    """The x2 head's input, unfolded: (B*h*w, C*9 + 1) for the crop's centre, a constant 1 last."""
    with torch.no_grad():
        x1 = model.restore(lr_B3HW).clamp(0, 1)
        feat = model.upscaler.features(x1)  # B C H W
    cols = F.unfold(feat, 3, padding=1)  # B C*9 H*W
    B, K, _ = cols.shape
    H, W = feat.shape[-2:]
    cols = cols.view(B, K, H, W)[:, :, MARGIN : H - MARGIN, MARGIN : W - MARGIN]
    cols = cols.permute(0, 2, 3, 1).reshape(-1, K)
    return torch.cat([cols, torch.ones(len(cols), 1)], dim=1)


def head_targets(t_B3HW: torch.Tensor, scale: int) -> torch.Tensor:
    """(B*h*w, 3 s^2): the target's s x s sub-pixels of each LR pixel, in pixel_shuffle's channel order."""
    t = F.pixel_unshuffle(t_B3HW, scale)  # B 3s^2 H W
    H, W = t.shape[-2:]
    t = t[:, :, MARGIN : H - MARGIN, MARGIN : W - MARGIN]
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def to01(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div(255)


def fit(
    model, pairs: Pairs, count: int, batch: int, ridge: float
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Least-squares heads {scale: (weight C_out C 3 3, bias)} over `count` pairs of each kind: x2 on
    both kinds' x2 targets, x4 on the x4 pairs'."""
    rng = np.random.default_rng(0)
    sums = {2: [0, 0], 4: [0, 0]}  # scale -> [X^T X, X^T Y]
    done = 0
    while done < count:
        n = min(batch, count - done)
        drawn = pairs.batch(rng, n)
        for kind in ("x2", "x4"):
            X = head_inputs(model, to01(drawn[kind]["lr"])).double()
            for scale in (2, 4) if kind == "x4" else (2,):
                Y = head_targets(to01(drawn[kind][f"t{scale}"]), scale).double()
                sums[scale][0] = sums[scale][0] + X.T @ X
                sums[scale][1] = sums[scale][1] + X.T @ Y
        done += n
        print(f"  {done}/{count} pairs of each kind", flush=True)
    heads = {}
    for scale, (xtx, xty) in sums.items():
        eye = torch.eye(len(xtx), dtype=xtx.dtype) * ridge * xtx.diagonal().mean()
        eye[-1, -1] = 0  # the bias is not shrunk
        sol = torch.linalg.solve(xtx + eye, xty)  # (C*9 + 1) 3s^2
        shape = model.upscaler.heads[f"x{scale}"].weight.shape
        heads[scale] = (sol[:-1].T.reshape(shape).float(), sol[-1].float())
    return heads


def scores(model, datasets) -> dict:
    ev = evaluate(model.eval(), datasets, (2, 4), ("bicubic", "realistic"), progress=False)
    return {
        f"{r['dataset']} {r['degradation']} x{r['scale']}": {
            "sr": round(r["sr"]["psnr"], 3),
            "ssim": round(r["sr"]["ssim"], 4),
            "bicubic": round(r["bicubic"]["psnr"], 3),
        }
        for r in ev["results"]
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--floor", type=Path, default=HERE)
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs-dense"))
    ap.add_argument("--count", type=int, default=4000, help="pairs of each kind")
    ap.add_argument("--ridge", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=HERE / "x2-head-probe.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_floor(args.floor).eval()
    datasets = ("Set5", "Set14")
    t0 = time.time()
    served = scores(model, datasets)
    heads = fit(model, Pairs(args.pairs), args.count, 500, args.ridge)
    out = {"count": args.count, "ridge": args.ridge, "margin": MARGIN, "served": served}
    for scale, (weight, bias) in heads.items():
        fitted = load_floor(args.floor).eval()
        head = fitted.upscaler.heads[f"x{scale}"]
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.copy_(bias)
        out[f"x{scale} fitted"] = scores(fitted, datasets)
    out["seconds"] = round(time.time() - t0)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    for k, row in served.items():
        fitted = out[f"{k[-2:]} fitted"][k]["sr"]
        print(
            f"{k}: served {row['sr']:.2f}, fitted head {fitted:.2f} ({fitted - row['sr']:+.2f}), "
            f"bicubic {row['bicubic']:.2f}"
        )


if __name__ == "__main__":
    main()
