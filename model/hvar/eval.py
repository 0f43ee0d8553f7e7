"""The super-resolution benchmark protocol, and its CLI.

For each HR image: modcrop to the scale, make the LR (MATLAB bicubic, or the realistic recipe with a
seed fixed per image), run a method `(lr_uint8, scale) -> sr_uint8`, score PSNR/SSIM on Y with
`scale` border pixels shaved. With `bicubic` both ways this reproduces the published baselines.

    python -m hvar.eval --dataset Set5 Set14 --scale 2 4 --json out.json --md out.md

A model plugs in by adding a function to METHODS (keep imports of heavy modules inside it).
"""

import argparse
import json
import math
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from hvar.degrade import DEGRADATIONS, make_lr, modcrop
from hvar.imresize import imresize_uint8
from hvar.metrics import psnr_y, ssim_y
from hvar.paths import data_root, list_images

# (lr_uint8 HxW[x3], scale) -> sr_uint8 of shape (H*scale, W*scale[, 3])
Method = Callable[[np.ndarray, int], np.ndarray]


def bicubic_method(lr: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: MATLAB bicubic upscale."""
    return imresize_uint8(lr, scale)


METHODS: dict[str, Method] = {"bicubic": bicubic_method}


# ---------------------------------------------------------------------------------------------- data


def resolve_dataset(name_or_path: str, root: Path | None = None) -> tuple[str, Path]:
    """(display name, HR folder) for `Set5`-style names under `<root>/dev/<name>/HR`, or a folder path."""
    path = Path(name_or_path)
    if not path.is_dir():
        path = (root or data_root()) / "dev" / name_or_path / "HR"
    elif (path / "HR").is_dir():
        path = path / "HR"
    if not path.is_dir():
        raise FileNotFoundError(
            f"dataset {name_or_path!r} not found (looked for a folder and for {path}); "
            "set --data-root or HVAR_DATA_ROOT to the shared/datasets folder"
        )
    name = path.parent.name if path.name == "HR" else path.name
    return name, path


def load_image(path: Path) -> np.ndarray:
    """uint8 HxW for single-channel files (scored on grey), HxWx3 RGB for everything else."""
    with Image.open(path) as im:
        return np.asarray(im if im.mode == "L" else im.convert("RGB"))


# ---------------------------------------------------------------------------------------------- protocol


def image_rng(name: str, scale: int, seed: int) -> np.random.Generator:
    """A generator fixed by (seed, scale, image name): runs are reproducible and order-independent."""
    return np.random.default_rng([seed, scale, zlib.crc32(name.encode())])


def evaluate_image(
    hr: np.ndarray,
    scale: int,
    method: Method,
    degradation: str = "bicubic",
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """(PSNR, SSIM) on Y of `method` for one uint8 HR image."""
    hr = modcrop(hr, scale)
    sr = method(make_lr(hr, scale, degradation, rng), scale)
    if sr.shape != hr.shape or sr.dtype != np.uint8:
        raise ValueError(f"method returned {sr.dtype} {sr.shape}, expected uint8 {hr.shape}")
    return psnr_y(sr, hr, shave=scale), ssim_y(sr, hr, shave=scale)


def evaluate_dataset(
    folder: Path,
    scale: int,
    method: Method,
    degradation: str = "bicubic",
    seed: int = 0,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Per-image and mean scores over every image in `folder`."""
    name = name or folder.name
    images = []
    for path in tqdm(list_images(folder), desc=f"{name} x{scale}", disable=not progress, file=sys.stderr):
        rng = image_rng(path.stem, scale, seed) if degradation == "realistic" else None
        psnr, ssim = evaluate_image(load_image(path), scale, method, degradation, rng)
        images.append({"name": path.stem, "psnr": psnr, "ssim": ssim})
    return {
        "dataset": name,
        "scale": scale,
        "psnr": float(np.mean([r["psnr"] for r in images])),
        "ssim": float(np.mean([r["ssim"] for r in images])),
        "images": images,
    }


# ---------------------------------------------------------------------------------------------- reports


def format_markdown(results: list[dict], method: str, degradation: str) -> str:
    """Summary table, then one per-image table per (dataset, scale)."""
    lines = [
        f"## {method} on {degradation} LR (PSNR dB / SSIM, Y channel, shave = scale)",
        "",
        "| dataset | scale | images | PSNR | SSIM |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['dataset']} | x{r['scale']} | {len(r['images'])} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
        )
    for r in results:
        lines += [
            "",
            f"### {r['dataset']} x{r['scale']}",
            "",
            "| image | PSNR | SSIM |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {i['name']} | {i['psnr']:.2f} | {i['ssim']:.4f} |" for i in r["images"]]
    return "\n".join(lines) + "\n"


def _finite(x):
    # JSON has no inf (identical images): write null rather than the non-standard `Infinity`.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m hvar.eval", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", nargs="+", default=["Set5"], help="names under <data-root>/dev, or HR folders"
    )
    parser.add_argument("--scale", nargs="+", type=int, default=[4], choices=[2, 3, 4])
    parser.add_argument("--method", default="bicubic", choices=sorted(METHODS))
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--seed", type=int, default=0, help="base seed of the realistic degradation")
    parser.add_argument("--data-root", type=Path, default=None, help="shared/datasets folder")
    parser.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    parser.add_argument("--md", type=Path, default=None, help="write the markdown tables here")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    method = METHODS[args.method]
    results = []
    for ds in args.dataset:
        name, folder = resolve_dataset(ds, args.data_root)
        for scale in args.scale:
            results.append(
                evaluate_dataset(
                    folder, scale, method, args.degradation, args.seed, name, not args.no_progress
                )
            )

    md = format_markdown(results, args.method, args.degradation)
    print(md, end="")
    if args.md:
        args.md.write_text(md)
    if args.json:
        report = {
            "method": args.method,
            "degradation": args.degradation,
            "seed": args.seed,
            "results": results,
        }
        args.json.write_text(json.dumps(_finite(report), indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
