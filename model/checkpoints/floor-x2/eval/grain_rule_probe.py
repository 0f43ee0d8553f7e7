"""Can `cleanup=auto` also tell a clean photo (which wants 0: x1 unchanged, x2 / x4 sharpest) from a JPEG
(about 0.5) and from heavier damage (0.75 or 1)? The noise estimate reads clean and JPEG LR alike
(quiet), so this adds a JPEG reading: how much stronger Y's steps are across the 8x8 block grid than
inside the blocks (the grid of a JPEG saved at this size). Reads every row of `noise-rule-probe.json`
(the sweep's 600 rows, each image at five strengths) from the LR it was scored on, and scores rules
"1 if noisy, else s_jpeg if blocky, else s_clean" against the served rule (1 if noisy, else 0.75).

    cd model && .venv/bin/python checkpoints/floor-x2/eval/grain_rule_probe.py \
        > checkpoints/floor-x2/eval/grain-rule-probe.md

(30 s on 2 cores; OpenCV12 from `hvar.heldout`.) The answer, 2026-12-05: no. The reading is 0.81-1.12
on clean LR and 0.82-1.13 on JPEG q90 (it follows the content as much as the grid), and the damages it
cannot see (noise of 3 levels, blur, noise under a JPEG q85) read as clean too and lose with less
clean-up: the best rule on the dev rows is 0.03 dB below the served one there, level held out.
"""

import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cleanup_sweep import at, luma  # noqa: E402
from noise_rule_probe import lr_of  # noqa: E402

from hvar.noise import NOISY_LEVEL  # noqa: E402

HERE = Path(__file__).parent


def blockiness(lr: np.ndarray) -> float:
    """Mean |step| of Y across the 8x8 grid's lines over the mean |step| inside the blocks (1: no grid)."""
    Y = luma(lr) * 255
    ratios = []
    for steps in (np.abs(np.diff(Y, axis=1)), np.abs(np.diff(Y, axis=0)).T):
        on_grid = (np.arange(steps.shape[1]) % 8) == 7
        ratios.append(steps[:, on_grid].mean() / max(steps[:, ~on_grid].mean(), 1e-6))
    return float(np.mean(ratios))


def served(r: dict) -> float:
    return 1.0 if r["liu"] > NOISY_LEVEL else 0.75


def rule(b_limit: float, s_jpeg: float, s_clean: float):
    return lambda r: 1.0 if r["liu"] > NOISY_LEVEL else (s_jpeg if r["blockiness"] > b_limit else s_clean)


def gain(rows: list[dict], choose, key: str = "sr") -> float:
    """Mean dB over the served rule; x1 leaves out clean LR, where x1 at 0 is the clean LR itself."""
    rows = [r for r in rows if key == "sr" or r["degradation"] != "bicubic"]
    return float(np.mean([at(r[key], choose(r)) - at(r[key], served(r)) for r in rows])) if rows else 0.0


def group(r: dict) -> tuple[str, str, int]:
    return ("held out" if r["dataset"] == "OpenCV12" else "dev", r["degradation"], r["scale"])


def table(header: str, rows: list[str]) -> str:
    cells = header.count("|") - 1
    return "\n".join([header, "|" + " --- |" * cells, *rows]) + "\n"


if __name__ == "__main__":
    sweep = json.loads((HERE / "noise-rule-probe.json").read_text())
    rows = [dict(r, blockiness=blockiness(lr_of(r))) for r in sweep]
    damages = list(dict.fromkeys(r["degradation"] for r in rows))
    spread = []
    for d in damages:
        v = np.array([r["blockiness"] for r in rows if r["degradation"] == d])
        spread.append(f"| {d} | {v.size} | {v.min():.3f} / {np.median(v):.3f} / {v.max():.3f} |")
    print("## JPEG reading (blockiness) per damage: min / median / max\n")
    print(table("| LR | n | blockiness |", spread))

    grid = itertools.product((1.05, 1.1, 1.2), (0.5, 0.75), (0.0, 0.25, 0.5))
    candidates = {f"b>{b:g}: jpeg {sj:g}, clean {sc:g}": rule(b, sj, sc) for b, sj, sc in grid}
    dev = [r for r in rows if r["dataset"] != "OpenCV12"]
    held = [r for r in rows if r["dataset"] == "OpenCV12"]
    groups = sorted({group(r) for r in rows}, key=lambda g: (g[0] != "dev", damages.index(g[1]), g[2]))
    members = {g: [r for r in rows if group(r) == g] for g in groups}
    ranked = sorted(candidates, key=lambda k: -gain(dev, candidates[k]))
    best_five = []
    for k in ranked[:5]:
        c = candidates[k]
        worst = min(groups, key=lambda g: gain(members[g], c))
        scores = [gain(dev, c), gain(dev, c, "x1"), gain(held, c), gain(held, c, "x1")]
        cells = " | ".join(f"{v:+.3f}" for v in scores)
        best_five.append(f"| {k} | {cells} | {' '.join(map(str, worst))} {gain(members[worst], c):+.2f} |")
    print("## Mean dB over the served rule (1 if noisy, else 0.75), every dev row; the five best on dev\n")
    print(table("| rule | dev x_s | dev x1 | held-out x_s | held-out x1 | worst group (x_s) |", best_five))

    c = candidates[ranked[0]]
    per_group = []
    for g in groups:
        where, damage, scale = g
        scores = f"{gain(members[g], c):+.2f} | {gain(members[g], c, 'x1'):+.2f}"
        per_group.append(f"| {where} | {damage} | x{scale} | {len(members[g])} | {scores} |")
    print(f"## Per group, {ranked[0]}: dB over the served rule (x1 in brackets)\n")
    print(table("| set | LR | scale | n | x_s | x1 |", per_group), end="")
