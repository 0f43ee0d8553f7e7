"""Can the served model pick strength 1 for noisy photos from a noise estimate, and keep the default 0.75
elsewhere? The clean-up sweep (`cleanup_sweep.py`) has clean, JPEG and realistic rows; this adds the
ladder's noise (sigma 3 / 10 / 25 levels on the clean LR), noise then a JPEG q85 (a noisy photo saved as
cameras save it) and blur 1.5 px, at the same five strengths, and reads three noise estimates of each LR:
Immerkaer's (a Laplacian mask), Chen et al.'s (2015; the eigenvalues of the covariance of 7x7 patches
whose mean equals their median) and Liu et al.'s (2013; the smallest eigenvalue over weakly textured
patches: `hvar.noise`, what `cleanup=auto` reads). Texture fools the first two, not the third.

    cd model && .venv/bin/python checkpoints/floor-x2/eval/noise_rule_probe.py   # ~10 min on 2 cores

Writes noise-rule-probe.json (the sweep's rows and the new ones, each with the three estimates) and
prints noise-rule-probe.md: the estimates per damage, and what the rule "1 above a threshold, else
0.75" gains over the constant 0.75 (`hvar.noise.NOISY_LEVEL` is the threshold chosen: 2).
"""

import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cleanup_sweep import STRENGTHS, at, luma, noise_sigma, sweep  # noqa: E402

from hvar import eval as protocol  # noqa: E402
from hvar.degrade import bicubic_lr, jpeg, make_lr, modcrop  # noqa: E402
from hvar.eval_sr import ladder_rung  # noqa: E402
from hvar.noise import noise_level  # noqa: E402
from hvar.paths import list_images  # noqa: E402

HERE = Path(__file__).parent
RUNGS = ("noise3", "noise10", "noise25", "noise10-jpeg85", "blur1.5")


def pca_sigma(Y: np.ndarray, d: int = 7) -> float:
    """Chen, Zhu & Heng (ICCV 2015): the noise variance is the mean of the covariance eigenvalues that
    equals their median; content lives in the few largest, noise spreads over all d*d of them."""
    P = np.lib.stride_tricks.sliding_window_view(Y, (d, d))[::2, ::2].reshape(-1, d * d)
    lam = np.sort(np.linalg.eigvalsh(np.cov(P, rowvar=False)))[::-1]
    for i in range(lam.size):
        tail = lam[i:]
        if tail.mean() <= np.median(tail):
            return float(np.sqrt(max(tail.mean(), 0.0)))
    return float(np.sqrt(max(lam[-1], 0.0)))


def damaged(clean: np.ndarray, rung: str, rng: np.random.Generator) -> np.ndarray:
    if rung == "noise10-jpeg85":
        x = ladder_rung(clean, "noise10", rng).astype(np.float32) / 255
        return np.clip(np.round(jpeg(x, 85) * 255), 0, 255).astype(np.uint8)
    return ladder_rung(clean, rung, rng)


def estimates(lr: np.ndarray) -> dict:
    Y = luma(lr)
    return {"immerkaer": noise_sigma(Y) * 255, "pca": pca_sigma(Y) * 255, "liu": noise_level(lr)}


def new_rows() -> list[dict]:
    """The noisy and blurred rows, scored at the five strengths as the sweep's are."""

    def rung_lr(hr, clean, rung, scale, rng):
        return damaged(clean, rung, rng)

    return sweep(RUNGS, rung_lr, lambda lr, outs: estimates(lr))


def lr_of(row: dict) -> np.ndarray:
    """The LR a row was scored on, rebuilt from its image, damage and seed."""
    ds = ".data/OpenCV12" if row["dataset"] == "OpenCV12" else row["dataset"]
    path = next(p for p in list_images(protocol.resolve_dataset(ds, None)[1]) if p.stem == row["image"])
    hr = modcrop(protocol.load_image(path), row["scale"])
    rng = protocol.image_rng(path.stem, row["scale"], 0)
    if row["degradation"] in RUNGS:
        return damaged(bicubic_lr(hr, row["scale"]), row["degradation"], rng)
    return make_lr(hr, row["scale"], row["degradation"], rng if row["degradation"] == "realistic" else None)


def sweep_rows() -> list[dict]:
    """The sweep's rows with both estimates of the LR they were made from (the same seeds)."""
    rows = json.loads((HERE / "cleanup-sweep.json").read_text())
    return [dict(r, **estimates(lr_of(r))) for r in rows]


def gain(rows: list[dict], choose, key: str) -> float:
    """Mean dB over the constant 0.75 when `choose(row)` picks each image's strength."""
    return float(np.mean([at(r[key], choose(r)) - at(r[key], 0.75) for r in rows]))


def report(rows: list[dict]) -> str:
    damages = list(dict.fromkeys(r["degradation"] for r in rows))
    lines = [
        "## Noise estimates (levels of 255, Y) per damage: min / median / max over images and scales",
        "",
        "| LR | n | Immerkaer | PCA (Chen 2015) | weak-texture PCA (Liu 2013, `hvar.noise`) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d in damages:
        sub = [r for r in rows if r["degradation"] == d]
        spread = [np.array([r[k] for r in sub]) for k in ("immerkaer", "pca", "liu")]
        cells = [" / ".join(f"{f(v):.1f}" for f in (np.min, np.median, np.max)) for v in spread]
        lines.append(f"| {d} | {len(sub)} | " + " | ".join(cells) + " |")
    thresholds = (1.5, 2.0, 3.0)
    lines += [
        "",
        "## dB over the constant 0.75: strength 1, and the rule s = 1 if Liu's estimate > T else 0.75",
        "(x_s PSNR-Y; x1 against the clean LR in brackets; oracle: each image's best of the five)",
        "",
        "| set | LR | scale | n | 1 | " + " | ".join(f"T={t:g}" for t in thresholds) + " | oracle |",
        "| --- " * (6 + len(thresholds)) + "|",
    ]
    choices = [lambda r: 1.0]
    choices += [lambda r, t=t: 1.0 if r["liu"] > t else 0.75 for t in thresholds]
    choices += [lambda r: STRENGTHS[int(np.argmax(r["sr"]))]]
    for held, d, scale in itertools.product((False, True), damages, (2, 4)):
        where = "OpenCV12" if held else "dev"
        sub = [
            r
            for r in rows
            if ("OpenCV12" if r["dataset"] == "OpenCV12" else "dev", r["degradation"], r["scale"])
            == (where, d, scale)
        ]
        if not sub:
            continue
        cells = [f"{gain(sub, c, 'sr'):+.2f}" + ("" if d == "bicubic" else f" ({gain(sub, c, 'x1'):+.2f})")
                 for c in choices]  # fmt: skip
        lines.append(f"| {where} | {d} | x{scale} | {len(sub)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = HERE / "noise-rule-probe.json"
    rows = json.loads(path.read_text()) if path.exists() else sweep_rows() + new_rows()
    if "liu" not in rows[0]:  # a file written before the third estimate: read it from the rebuilt LR
        rows = [dict(r, liu=noise_level(lr_of(r))) for r in rows]
    path.write_text(json.dumps(rows, separators=(",", ":")) + "\n")
    md = report(rows)
    (HERE / "noise-rule-probe.md").write_text(md)
    print(md, end="")
