"""How far the realistic-LR target (+1.5 dB over bicubic at x2 and x4, +1.5 dB over the input at x1) is
from what any filter could do on these very images: per image, the least-squares linear filter that maps
the degraded LR to the answer, fitted with the answer known (an oracle: it knows the image's blur, noise
and content). A blind network may beat it (on clean LR SPAN beats it by 2 dB), but the gap between the
two says how much of the target is knowing the degradation rather than upscaling well.

Rows, PSNR on Y (BT.601, float, `scale` px shaved for x2/x4, none for x1; realistic LR with eval_sr's
per-image seeds, bicubic LR as the benchmark makes it):
  bicubic / input       MATLAB bicubic of the LR (x2, x4) or the LR itself (x1)
  served floor          the served ONNX model through the runner's tiling (hvar.eval_sr)
  floor, oracle blend   the floor's x1 blended with its input at the best weight per image: what knowing
                        how strongly to restore each image would add
  oracle linear KxK     per image (per output phase), a KxK filter of the LR plus a constant

From model/ (about 3 minutes on 2 cores):

    .venv/bin/python checkpoints/floor-restore-heavy/ceiling_probe.py \
        > checkpoints/floor-restore-heavy/ceiling-probe.md
"""

import numpy as np
import torch

from hvar import eval as protocol
from hvar.degrade import bicubic_lr, make_lr, modcrop
from hvar.eval_sr import SRMethod, load_model
from hvar.imresize import imresize_uint8
from hvar.paths import list_images

K = 11  # filter side: wider than the widest realistic blur at LR size
torch.backends.nnpack.set_flags(False)
floor = SRMethod(load_model("../gpu-runner/models/hvar", 2), 0.0, 0, None)


def luma(img: np.ndarray) -> np.ndarray:
    a = img.astype(np.float64)
    return a if a.ndim == 2 else 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255


def psnr(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return float(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


def oracle_linear(lr_y: np.ndarray, target_y: np.ndarray, scale: int) -> np.ndarray:
    """The least-squares KxK filter (one per output phase) from lr_y to target_y, applied."""
    h, w = lr_y.shape
    p = np.pad(lr_y, K // 2, mode="reflect")
    shifted = [p[i : i + h, j : j + w].ravel() for i in range(K) for j in range(K)]
    taps = np.stack([*shifted, np.ones(h * w)], 1)  # (h*w, K*K + 1)
    out = np.zeros_like(target_y)
    for py in range(scale):
        for px in range(scale):
            phase = target_y[py::scale, px::scale].ravel()
            weights, *_ = np.linalg.lstsq(taps, phase, rcond=None)
            out[py::scale, px::scale] = (taps @ weights).reshape(h, w)
    return np.clip(out, 0, 255)


def best_blend(lr_y: np.ndarray, x1_y: np.ndarray, clean_y: np.ndarray) -> float:
    return max(psnr(np.clip(lr_y + a * (x1_y - lr_y), 0, 255), clean_y, 0) for a in np.linspace(0, 2, 41))


def rows(dataset: str, scale: int, degradation: str) -> dict[str, float]:
    _, folder = protocol.resolve_dataset(dataset, None)
    acc: dict[str, list[float]] = {}
    for path in list_images(folder):
        hr = modcrop(protocol.load_image(path), scale)
        rng = protocol.image_rng(path.stem, scale, 0) if degradation == "realistic" else None
        lr = make_lr(hr, scale, degradation, rng)
        out = floor.outputs(lr)
        hr_y, lr_y, clean_y, x1_y = luma(hr), luma(lr), luma(bicubic_lr(hr, scale)), luma(out[1])
        scores = {
            f"x{scale} bicubic": psnr(luma(imresize_uint8(lr, scale)), hr_y, scale),
            f"x{scale} served floor": psnr(luma(out[scale]), hr_y, scale),
            f"x{scale} oracle linear": psnr(oracle_linear(lr_y, hr_y, scale), hr_y, scale),
        }
        if degradation == "realistic":
            scores |= {
                "x1 input": psnr(lr_y, clean_y, 0),
                "x1 served floor": psnr(x1_y, clean_y, 0),
                "x1 floor, oracle blend": best_blend(lr_y, x1_y, clean_y),
                "x1 oracle linear": psnr(oracle_linear(lr_y, clean_y, 1), clean_y, 0),
            }
        for k, v in scores.items():
            acc.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def main() -> None:
    print("PSNR-Y (dB), mean over the set; in brackets the gain over bicubic (x2, x4) or the input (x1).")
    print(f"K = {K}.\n")
    print("| degradation | set | row | x2 | x4 |")
    print("| --- | --- | --- | --- | --- |")
    for degradation in ("realistic", "bicubic"):
        for dataset in ("Set5", "Set14"):
            r = {s: rows(dataset, s, degradation) for s in (2, 4)}
            names = ["bicubic", "served floor", "oracle linear"]
            for name in names:
                cells = []
                for s in (2, 4):
                    v, base = r[s][f"x{s} {name}"], r[s][f"x{s} bicubic"]
                    cells.append(f"{v:.2f}" + ("" if name == "bicubic" else f" ({v - base:+.2f})"))
                print(f"| {degradation} | {dataset} | {name} | {' | '.join(cells)} |")
            if degradation == "realistic":
                for name in ("input", "served floor", "floor, oracle blend", "oracle linear"):
                    cells = []
                    for s in (2, 4):  # x1 of the LR made for that scale
                        v, base = r[s][f"x1 {name}"], r[s]["x1 input"]
                        cells.append(f"{v:.2f}" + ("" if name == "input" else f" ({v - base:+.2f})"))
                    print(f"| {degradation} | {dataset} | x1: {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
