"""Could the served model choose its clean-up strength from the image? Every colour image of Set5 / Set14
(dev) and OpenCV12 (held-out), at x2's and x4's LR, clean, JPEG q90 / q75 / q50 and realistic, through
the served file at strengths 0, 0.25, 0.5, 0.75 and 1 (the runner's tiling, `hvar.eval_sr`); and
statistics of the LR a rule could read: the restorer's correction at strength 1 (RMS of x1 - LR on Y),
the LR's own detail (RMS of Y minus its 3x3 mean) and its noise (Immerkaer's estimate).

    cd model && .venv/bin/python checkpoints/floor-x2/eval/cleanup_sweep.py   # 8 min on 2 cores

Writes cleanup-sweep.json (per image: PSNR-Y of x_s and of x1 at each strength, the statistics) beside
this file and prints cleanup-sweep.md: the mean at each strength, the per-image best (an oracle), and
the best rule s = clip(a + b ln(correction / detail) + c ln(correction), 0, 1) fitted on the dev sets.
"""

import itertools
import json
from pathlib import Path

import numpy as np

from hvar import eval as protocol
from hvar.degrade import bicubic_lr, make_lr, modcrop
from hvar.eval_sr import SRMethod, load_model
from hvar.metrics import psnr_y
from hvar.paths import list_images

HERE = Path(__file__).parent
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEGRADATIONS = ("bicubic", "jpeg90", "jpeg75", "jpeg50", "realistic")
DATASETS = ("Set5", "Set14", ".data/OpenCV12")


def luma(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64)
    return (16 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255) / 255


def box3(Y: np.ndarray) -> np.ndarray:
    P = np.pad(Y, 1, mode="reflect")
    return sum(P[i : i + Y.shape[0], j : j + Y.shape[1]] for i in range(3) for j in range(3)) / 9


def noise_sigma(Y: np.ndarray) -> float:
    """Immerkaer (1996): the mask [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels smooth content."""
    d = Y[:, :-2] - 2 * Y[:, 1:-1] + Y[:, 2:]
    return float(np.sqrt(np.pi / 2) * np.abs(d[:-2] - 2 * d[1:-1] + d[2:]).mean() / 6)


def damaged_lr(hr: np.ndarray, clean: np.ndarray, deg: str, scale: int, rng: np.random.Generator):
    """The LR of one row (uint8): the evaluation's degradation `deg` of the HR image."""
    return make_lr(hr, scale, deg, rng if deg == "realistic" else None)


def lr_statistics(lr: np.ndarray, outs: dict) -> dict:
    """What a rule could read: the restorer's correction at strength 1, the LR's detail and its noise."""
    Y, corr = luma(lr), luma(outs[1.0][1]) - luma(lr)
    return {
        "correction": float(np.sqrt((corr**2).mean())),
        "detail": float(np.sqrt(((Y - box3(Y)) ** 2).mean())),
        "noise": noise_sigma(Y),
    }


def sweep(damages=DEGRADATIONS, lr_of=damaged_lr, statistics=lr_statistics) -> list[dict]:
    """Every colour image x damage x scale through the served file at each strength, with `statistics`."""
    model = load_model("../gpu-runner/models/hvar", threads=2)
    methods = {s: SRMethod(model, cleanup=s) for s in STRENGTHS}
    rows = []
    for ds in DATASETS:
        name, folder = protocol.resolve_dataset(ds, None)
        for path, deg, scale in itertools.product(list_images(folder), damages, (2, 4)):
            hr = modcrop(protocol.load_image(path), scale)
            if hr.ndim == 2:
                continue  # grey: the clean-up has no colour statistics to read alike
            clean = bicubic_lr(hr, scale)
            lr = lr_of(hr, clean, deg, scale, protocol.image_rng(path.stem, scale, 0))
            outs = {s: m.outputs(lr) for s, m in methods.items()}
            rows.append({
                "dataset": name, "image": path.stem, "degradation": deg, "scale": scale,
                "sr": [round(psnr_y(outs[s][scale], hr, shave=scale), 3) for s in STRENGTHS],
                "x1": [round(min(psnr_y(outs[s][1], clean, shave=0), 99.0), 3) for s in STRENGTHS],
                **statistics(lr, outs),
            })  # fmt: skip
            print(name, path.stem, deg, scale, rows[-1]["sr"], flush=True)
    return rows


def at(curve, s: float) -> float:
    return float(np.interp(s, STRENGTHS, curve))


def rule(row: dict, a: float, b: float, c: float) -> float:
    ratio, corr = np.log(row["correction"] / row["detail"]), np.log(row["correction"] * 255)
    return float(np.clip(a + b * ratio + c * corr, 0, 1))


def best(row: dict) -> float:
    """The strength that served this image's x_s best: what a perfect chooser would pick."""
    return STRENGTHS[int(np.argmax(row["sr"]))]


def gain(rows: list[dict], choose, key: str = "sr") -> float:
    """Mean dB over strength 1 (the default) when `choose(row)` picks each image's strength."""
    return float(np.mean([at(r[key], choose(r)) - r[key][-1] for r in rows]))


def report(rows: list[dict]) -> str:
    dev = [r for r in rows if r["dataset"] != "OpenCV12"]
    cells = {(r["dataset"] == "OpenCV12", r["degradation"], r["scale"]) for r in rows}

    def cell(held: bool, deg: str, scale: int) -> list[dict]:
        return [r for r in rows if (r["dataset"] == "OpenCV12") == held and r["degradation"] == deg
                and r["scale"] == scale]  # fmt: skip

    # the rule fitted on the dev sets, every degradation weighed alike
    grid = itertools.product(np.arange(-1, 2.01, 0.1), np.arange(-0.5, 0.51, 0.1), np.arange(-0.3, 0.31, 0.1))
    a, b, c = max(grid, key=lambda p: np.mean([gain(cell(False, d, s), lambda r: rule(r, *p)) for d, s in
                                                {(d, s) for _, d, s in cells}]))  # fmt: skip
    lines = [
        f"Rule fitted on Set5 + Set14: s = clip({a:.2f} + {b:.2f} ln(correction / detail) + {c:.2f} "
        "ln(correction x 255), 0, 1).",
        "",
        "dB over strength 1 (x_s, PSNR-Y; x1 against the clean LR in brackets, but for clean LR, where x1 at "
        "0 is the input itself): a constant strength, the fitted rule, the best strength per image (oracle).",
        "",
        "| set | LR | scale | n | 0 | 0.5 | 0.75 | rule | oracle |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for held, deg, scale in sorted(cells, key=lambda k: (k[0], DEGRADATIONS.index(k[1]), k[2])):
        sub = cell(held, deg, scale)

        def both(choose, sub=sub, deg=deg) -> str:
            x1 = "" if deg == "bicubic" else f" ({gain(sub, choose, 'x1'):+.2f})"
            return f"{gain(sub, choose):+.2f}{x1}"

        lines.append(
            f"| {'OpenCV12' if held else 'dev'} | {deg} | x{scale} | {len(sub)} | "
            + " | ".join(both(lambda r, s=s: s) for s in (0.0, 0.5, 0.75))
            + f" | {both(lambda r: rule(r, a, b, c))} | {both(best)} |"
        )
    lines.append(f"\n{len(dev)} dev rows, {len(rows) - len(dev)} held-out rows.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = HERE / "cleanup-sweep.json"
    rows = json.loads(path.read_text()) if path.exists() else sweep()
    path.write_text(json.dumps(rows, separators=(",", ":")) + "\n")
    md = report(rows)
    (HERE / "cleanup-sweep.md").write_text(md)
    print(md, end="")
