"""No-reference evaluation on real low-resolution photos (RealSRSet): what users send, with no HR to
score against. For every photo, NIQE (lower is more natural) of MATLAB bicubic and of each model's x2
and x4, run as the runner runs them (`hvar.eval_sr`'s tiling), and a contact sheet of centre crops to
look at: the numbers say which output looks least processed, only the pictures say whether it is better.

    python -m hvar.eval_real --model "hvar 2.5.0=../gpu-runner/models/hvar" \\
        --model "SPAN=runs/span-published" --json runs/realsr/niqe.json --sheet runs/realsr/sheet.png

RealSRSet is research-only: keep its outputs and sheets out of the repository (runs/ is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from hvar import eval as protocol
from hvar.eval_sr import SRMethod, load_model, niqe_or_none
from hvar.figure import column, folder_and_cleanup, panel, row
from hvar.imresize import imresize_uint8
from hvar.noise import file_jpeg_quality
from hvar.paths import data_root, list_images

DATASET = "RealSRSet"  # <data-root>/dev/RealSRSet/LR: 25 real LR photos, no ground truth
SHEET_CROP = 48  # LR pixels a side of each photo's centre crop on the sheet (192 px at x4)


def real_lr_folder(name_or_path: str, root: Path | None = None) -> Path:
    """A folder of LR photos: the path itself, its LR/ subfolder, or <root>/dev/<name>/LR."""
    path = Path(name_or_path)
    if not path.is_dir():
        path = (root or data_root()) / "dev" / name_or_path
    if (path / "LR").is_dir():
        path = path / "LR"
    if not path.is_dir():
        raise FileNotFoundError(f"no LR folder for {name_or_path!r} (looked at {path}); set --data-root")
    return path


Outputs = dict[str, dict[int, np.ndarray]]  # model name -> {1: x1, 2: x2, 4: x4}


def evaluate_real(
    methods: dict[str, SRMethod],
    paths: list[Path],
    scales: tuple[int, ...] = (2, 4),
    progress: bool = True,
    on_photo: Callable[[str, np.ndarray, Outputs], None] | None = None,
) -> dict:
    """{"images": [{name, size, niqe: {"bicubic x4": v, "<model> x4": v, ...}}], "mean": {...}}.

    The mean is over the photos where every column has a NIQE (an output needs two whole 96x96 blocks),
    so the columns are compared on the same photos. `on_photo(name, lr, outputs)` sees each photo's
    outputs once they exist (the contact sheet), so no model runs twice."""
    images = []
    for path in tqdm(paths, desc="real LR", disable=not progress, file=sys.stderr):
        lr = protocol.load_image(path)
        saved = file_jpeg_quality(path)  # `auto` reads a JPEG's quality from the file, as the runner does
        outputs = {name: m.outputs(lr, saved) for name, m in methods.items()}
        if on_photo is not None:
            on_photo(path.stem, lr, outputs)
        scores = {}
        for s in scales:
            scores[f"bicubic x{s}"] = niqe_or_none(imresize_uint8(lr, s))
            scores |= {f"{name} x{s}": niqe_or_none(out[s]) for name, out in outputs.items()}
        images.append({"name": path.stem, "size": list(lr.shape[:2]), "niqe": scores})
    columns = list(images[0]["niqe"]) if images else []
    scored = [im for im in images if all(im["niqe"][c] is not None for c in columns)]
    mean = {c: float(np.mean([im["niqe"][c] for im in scored])) if scored else None for c in columns}
    return {"images": images, "mean": mean, "scored": len(scored)}


def report_markdown(ev: dict) -> str:
    """One row per photo and the mean; the lowest NIQE of each scale in bold."""
    columns = list(ev["mean"])
    lines = [
        f"NIQE (no reference, lower is more natural) of each output, mean over the {ev['scored']} photos "
        "every column scores.",
        "",
        "| photo | LR size | " + " | ".join(columns) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " |",
    ]

    def cells(scores: dict) -> list[str]:
        out = []
        for c in columns:
            v = scores[c]
            scale = c.rsplit(" ", 1)[1]  # columns are "<method> x<s>"
            same_scale = [scores[k] for k in columns if k.endswith(f" {scale}") and scores[k] is not None]
            text = "-" if v is None else f"{v:.2f}"
            out.append(f"**{text}**" if v is not None and v == min(same_scale) else text)
        return out

    for im in ev["images"]:
        h, w = im["size"]
        lines.append(f"| {im['name']} | {w}x{h} | " + " | ".join(cells(im["niqe"])) + " |")
    lines.append("| **mean** | | " + " | ".join(cells(ev["mean"])) + " |")
    return "\n".join(lines) + "\n"


def sheet_row(name: str, lr: np.ndarray, outputs: Outputs, scale: int = 4) -> Image.Image:
    """One photo's row of the contact sheet: its centre crop as given (nearest), bicubic and each model."""
    c = min(SHEET_CROP, *lr.shape[:2])
    y, x = (lr.shape[0] - c) // 2, (lr.shape[1] - c) // 2
    Y, X, C = y * scale, x * scale, c * scale
    crops = [(f"{name} LR (nearest)", lr[y : y + c, x : x + c].repeat(scale, 0).repeat(scale, 1))]
    crops.append((f"bicubic x{scale}", imresize_uint8(lr, scale)[Y : Y + C, X : X + C]))
    crops += [(f"{model} x{scale}", out[scale][Y : Y + C, X : X + C]) for model, out in outputs.items()]
    return row([panel(img, label) for label, img in crops])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER[?cleanup=S]",
                    help="an exported model folder or a floor / H-VAR run, at clean-up strength S (a model "
                    "that takes one; default 1); repeat to compare")  # fmt: skip
    ap.add_argument(
        "--dataset", default=DATASET, help="a name under <data-root>/dev, or a folder of LR photos"
    )
    ap.add_argument("--scale", nargs="+", type=int, default=[2, 4], choices=[2, 4])
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--sheet", type=Path, default=None, help="write the contact sheet (x4 crops) here")
    ap.add_argument("--sheet-photos", type=int, default=8, help="photos on the sheet (the first N)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    pairs = [m.split("=", 1) for m in args.model]
    models = [(p[0], *folder_and_cleanup(p[1])) for p in pairs if len(p) == 2]
    if len(models) != len(pairs) or any(not Path(folder).is_dir() for _, folder, _ in models):
        ap.error("every --model must be NAME=FOLDER with an existing folder")
    if any(strength is None for _, _, strength in models):
        ap.error("?cleanup= takes a number from 0 to 1, or auto")
    if len({n for n, _ in pairs}) != len(pairs):
        ap.error("--model names must differ")
    if args.sheet_photos < 1:
        ap.error("--sheet-photos must be >= 1")
    try:
        paths = list_images(real_lr_folder(args.dataset, args.data_root))
    except FileNotFoundError as e:
        ap.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = {name: SRMethod(load_model(folder, args.threads), cleanup=s) for name, folder, s in models}
    rows: list[Image.Image] = []

    def keep_row(name: str, lr: np.ndarray, outputs: Outputs) -> None:
        if args.sheet and len(rows) < args.sheet_photos:
            rows.append(sheet_row(name, lr, outputs))

    ev = evaluate_real(methods, paths, tuple(args.scale), on_photo=keep_row)
    ev["models"] = dict(pairs)  # as given, strengths included
    md = report_markdown(ev)
    print(md, end="")
    for out, text in ((args.json, json.dumps(ev, indent=1)), (args.md, md)):
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        column(rows).save(args.sheet)
        print(f"wrote {args.sheet}")
    return ev


if __name__ == "__main__":
    main()
