"""Before/after figure: one photo's LR input next to bicubic and each model's x4 (or x2, `--scale 2`), clean
and degraded.

    python -m hvar.figure --image ../worker/public/demo/examples/chelsea.jpg \\
        --model "hvar 2.7=../gpu-runner/models/hvar" --model "hvar 2.6=runs/prev/hvar-2.6" \\
        --out ../docs/before-after.png

The photo is taken as the HR image; its LR is made one row per `--degradation` (default: MATLAB bicubic,
then the realistic recipe with a fixed seed; `jpeg<q>` is the bicubic LR saved as a JPEG of quality q,
`noise<s>` the bicubic LR with Gaussian noise of s levels),
each run through the exported model by the runner's tiling (`hvar.eval_sr`). A folder may end in
`?cleanup=S`, the clean-up strength of a model that takes one, or `?cleanup=auto`
(`--model "cleanup 0=../gpu-runner/models/hvar?cleanup=0"`).
A crop of `--crop` HR pixels around the centre keeps the detail visible. Use the CC0 example photos, not
the research-only benchmark sets: the figure goes into the repository and the model card.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hvar import eval as protocol
from hvar.degrade import DEGRADATIONS, jpeg_quality, make_lr, modcrop
from hvar.eval_sr import SRMethod, degradation, load_model
from hvar.imresize import imresize_uint8
from hvar.noise import AUTO

LABEL_H = 14


def panel(img: np.ndarray, label: str) -> Image.Image:
    im = Image.fromarray(img)
    out = Image.new("RGB", (im.width, im.height + LABEL_H), "white")
    out.paste(im, (0, LABEL_H))
    ImageDraw.Draw(out).text((2, 1), label, fill="black")
    return out


def row(panels: list[Image.Image], gap: int = 4) -> Image.Image:
    out = Image.new(
        "RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), panels[0].height), "white"
    )
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def column(rows: list[Image.Image], gap: int = 4) -> Image.Image:
    out = Image.new("RGB", (rows[0].width, sum(r.height for r in rows) + gap * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + gap
    return out


def save(figure: Image.Image, path: Path) -> None:
    """PNG, or JPEG by the suffix: quality 92 without chroma subsampling keeps the pixels it compares
    nearly intact at a quarter of a PNG's bytes (figures are committed; the repository travels with
    every GPU call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = {"quality": 92, "subsampling": 0} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    figure.save(path, **jpeg)


def centre_box(hr_HWC: np.ndarray, crop: int, scale: int = 4) -> tuple[int, int, int]:
    """(y, x, side) of the centre crop of at most `crop` HR pixels a side, all multiples of `scale`, so
    that the crop falls on whole LR pixels."""
    c = min(crop, *hr_HWC.shape[:2]) // scale * scale
    return (hr_HWC.shape[0] - c) // 2 // scale * scale, (hr_HWC.shape[1] - c) // 2 // scale * scale, c


def folder_and_cleanup(spec: str) -> tuple[str, float | str | None]:
    """`FOLDER[?cleanup=S]` -> (folder, strength; 1 when not given, "auto" as given, None when not a
    number in [0, 1])."""
    folder, _, query = spec.partition("?cleanup=")
    if query == AUTO:
        return folder, AUTO
    try:
        strength = float(query) if query else 1.0
    except ValueError:
        return folder, None
    return folder, strength if 0 <= strength <= 1 else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER[?cleanup=S]")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--crop", type=int, default=192, help="HR pixels shown per side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=int, default=4, choices=[2, 4])
    ap.add_argument(
        "--degradation", nargs="+", type=degradation, default=list(DEGRADATIONS), help="one row each"
    )
    args = ap.parse_args(argv)
    pairs = [m.split("=", 1) for m in args.model]
    if any(len(p) != 2 for p in pairs):
        ap.error("every --model is NAME=FOLDER")
    models = [(name, *folder_and_cleanup(folder)) for name, folder in pairs]
    if not args.image.is_file() or any(not Path(folder).is_dir() or s is None for _, folder, s in models):
        ap.error("--image must be a file, every --model NAME=FOLDER an existing folder, ?cleanup=0-1 or auto")
    methods = [(name, SRMethod(load_model(folder), cleanup=s)) for name, folder, s in models]

    s = args.scale
    hr = modcrop(np.asarray(Image.open(args.image).convert("RGB")), s)
    y, x, c = centre_box(hr, args.crop, s)
    rows = []
    for name in args.degradation:
        rng = protocol.image_rng(args.image.stem, s, args.seed)
        lr = make_lr(hr, s, name, rng)
        ly, lx, lc = y // s, x // s, c // s
        crop = [(f"{name} LR (nearest)", lr[ly : ly + lc, lx : lx + lc].repeat(s, 0).repeat(s, 1))]
        crop.append((f"bicubic x{s}", imresize_uint8(lr, s)[y : y + c, x : x + c]))
        saved = jpeg_quality(name)  # a JPEG row's LR came as a JPEG file: `auto` reads its quality
        crop += [(f"{model} x{s}", m.outputs(lr, saved)[s][y : y + c, x : x + c]) for model, m in methods]
        crop.append(("original", hr[y : y + c, x : x + c]))
        rows.append(row([panel(img, label) for label, img in crop]))
    save(column(rows), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
