"""Super-resolution quality of a trained H-VAR run, by the protocol of `hvar.eval`.

For every HR image, scale s in {2, 4} and degradation (bicubic, realistic): modcrop to s, make the LR by
the protocol (realistic: a seed fixed per image), run the model once (cut into LR tiles and stitched as
the runner does, `hvar.tiling`; greedy decoding unless --temperature) and score
  * x_s (the model's x2 or x4 output) against the HR image, PSNR / SSIM on Y, `s` pixels shaved, next
    to MATLAB bicubic upscaling of the same LR (the baseline, same run);
  * x1 against the clean HR downscaled to the LR size (MATLAB bicubic: the benchmark's clean LR), next
    to the score of the LR input itself: how much x1 cleaned it (with bicubic degradation the input IS
    the clean LR, so its score is infinite).
It also writes side-by-side crops (input | bicubic | H-VAR | HR, and input | x1 | clean LR) as PNG.

    python -m hvar.eval_sr --run runs/hvar-base --dataset Set5 Set14 --scale 2 4 \\
        --degradation bicubic realistic --md runs/hvar-base/sr.md --crops runs/hvar-base/crops
    python -m hvar.eval_sr --compare DPO=runs/eval-a.json "no DPO"=runs/eval-b.json   # one table

The model also plugs into `hvar.eval` as a method: `register(model)` adds `METHODS["hvar"]`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from hvar import contract, degrade
from hvar import eval as protocol
from hvar.config import SCALES
from hvar.data import tensor_to_uint8, uint8_to_tensor
from hvar.degrade import DEGRADATIONS, bicubic_lr, jpeg_quality, make_lr, modcrop, noise_sigma
from hvar.floor import CONFIG_FILE as FLOOR_CONFIG
from hvar.floor import Floor, load_floor
from hvar.imresize import imresize_uint8
from hvar.metrics import psnr_y, ssim_y
from hvar.niqe import niqe
from hvar.noise import AUTO, auto_cleanup
from hvar.paths import list_images
from hvar.sr import HVAR, load_hvar
from hvar.tiling import Blender, cut_tile, fit_side, tile_starts

CROP_HR = 96  # side of the HR region shown in the side-by-side PNGs
CROPS_PER_SET = 2  # images per (dataset, scale, degradation) written as PNG


@torch.no_grad()
def upscale(
    model: Model,
    lr_HWC: np.ndarray,
    temperature: float = 0.0,
    seed: int = 0,
    batch: int = 16,
    overlap: int | None = None,
    cleanup: float = 1.0,
) -> dict[int, np.ndarray]:
    """One model pass over a whole uint8 LR image (HxWx3, any size) -> {1: x1, 2: x2, 4: x4} uint8, cut and
    stitched as the runner does (`hvar.tiling`). Any model of the runner's contract (`hvar.contract`):
    `model.tile`, `model.tokens` (uniforms per tile, 0 for none), `model.overlap` (optional) and
    `model(lr01_N3TT, noise_NL, temperature_1) -> (x1, x2, x4, ...)` in [0, 1], given `cleanup=` too
    where `model.cleanup`; like the runner, it reads the image outputs and ignores the rest (tokens)."""
    T, step = model.tile, getattr(model, "tile_step", None)
    if overlap is None:
        overlap = getattr(model, "overlap", None)
        overlap = T // 4 if overlap is None else overlap
    H, W = lr_HWC.shape[:2]
    th, tw = (T, T) if step is None else (fit_side(H, T, overlap, step), fit_side(W, T, overlap, step))
    ys, xs = tile_starts(H, th, overlap), tile_starts(W, tw, overlap)
    boxes = [(r, c) for r in range(len(ys)) for c in range(len(xs))]
    blenders = {s: Blender((H, W), ys, xs, (th, tw), overlap, s) for s in SCALES}
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    temperature_1 = torch.tensor([temperature], device=device)
    strength = {"cleanup": torch.tensor([cleanup], device=device)} if contract.takes_cleanup(model) else {}
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        tiles = [cut_tile(lr_HWC, ys[r], xs[c], th, tw) for r, c in chunk]
        x = torch.stack([uint8_to_tensor(t) for t in tiles]).add(1).div(2)
        noise = torch.rand(len(chunk), model.tokens, generator=gen)
        imgs = model(x.to(device), noise.to(device), temperature_1, **strength)[: len(SCALES)]
        for s, img in zip(SCALES, imgs, strict=True):
            img = img.float().cpu().numpy()
            for b, (r, c) in enumerate(chunk):
                blenders[s].add(r, c, ys[r], xs[c], img[b])
    return {s: tensor_to_uint8(torch.from_numpy(blenders[s].image()).float() * 2 - 1) for s in SCALES}


class SRMethod:
    """H-VAR as an `hvar.eval` method: (lr_uint8, scale) -> sr_uint8. One pass gives every scale."""

    def __init__(
        self, model: Model, temperature: float = 0.0, seed: int = 0, overlap: int | None = None,
        cleanup: float | str = 1.0,
    ):  # fmt: skip
        self.model, self.temperature, self.seed, self.overlap = model.eval(), temperature, seed, overlap
        self.cleanup = cleanup  # a strength, or "auto": each image's own (hvar.noise), as the runner picks

    def outputs(self, lr: np.ndarray, jpeg_quality: int | None = None) -> dict[int, np.ndarray]:
        """Every scale of `lr`; `jpeg_quality` where it came as a JPEG file of that quality, which `auto`
        reads as the runner reads the file's own table."""
        grey = lr.ndim == 2
        rgb = np.stack([lr] * 3, -1) if grey else lr
        cleanup = auto_cleanup(rgb, jpeg_quality) if self.cleanup == AUTO else self.cleanup
        out = upscale(self.model, rgb, self.temperature, self.seed, overlap=self.overlap, cleanup=cleanup)
        # grey in, grey out, as the runner does: the mean of the channels (a network may tint grey)
        return {s: np.round(im.mean(-1)).astype(np.uint8) if grey else im for s, im in out.items()}

    def __call__(self, lr: np.ndarray, scale: int) -> np.ndarray:
        if scale not in SCALES[1:]:
            raise ValueError(f"H-VAR outputs x2 and x4, not x{scale}")
        return self.outputs(lr)[scale]


def register(model: Model, name: str = "hvar", **kwargs) -> SRMethod:
    """Add the model to `hvar.eval.METHODS` under `name` (so `evaluate_dataset` can run it)."""
    method = SRMethod(model, **kwargs)
    protocol.METHODS[name] = method
    return method


# ---- crops ------------------------------------------------------------------------------------------------
def _nearest(img: np.ndarray, factor: int) -> np.ndarray:
    return img.repeat(factor, 0).repeat(factor, 1)


def side_by_side(lr, bic, sr, hr, x1, clean_lr, scale: int) -> np.ndarray:
    """Two rows at HR size: input | bicubic | H-VAR | HR, and input | x1 | clean LR (nearest-upscaled)."""
    lr, bic, sr, hr, x1, clean_lr = (np.stack([im] * 3, -1) if im.ndim == 2 else im
                                     for im in (lr, bic, sr, hr, x1, clean_lr))  # fmt: skip
    c = min(CROP_HR, hr.shape[0], hr.shape[1]) // scale * scale
    y = (hr.shape[0] - c) // 2 // scale * scale
    x = (hr.shape[1] - c) // 2 // scale * scale
    ly, lx, lc = y // scale, x // scale, c // scale

    def hr_crop(im):
        return im[y : y + c, x : x + c]

    def lr_crop(im):
        return _nearest(im[ly : ly + lc, lx : lx + lc], scale)

    gap = np.full((c, 4, 3), 255, np.uint8)
    row1 = [lr_crop(lr), gap, hr_crop(bic), gap, hr_crop(sr), gap, hr_crop(hr)]
    row2 = [lr_crop(lr), gap, lr_crop(x1), gap, lr_crop(clean_lr), gap, np.full((c, c, 3), 255, np.uint8)]
    return np.concatenate(
        [np.concatenate(row1, 1), np.full((4, 4 * c + 12, 3), 255, np.uint8), np.concatenate(row2, 1)], 0
    )


# ---- the evaluation -----------------------------------------------------------------------------------
def evaluate(
    model: Model,
    datasets: tuple[str, ...] = ("Set5", "Set14"),
    scales: tuple[int, ...] = (2, 4),
    degradations: tuple[str, ...] = ("bicubic", "realistic"),
    seed: int = 0,
    temperature: float = 0.0,
    crops_dir: Path | None = None,
    data_root: Path | None = None,
    progress: bool = True,
    overlap: int | None = None,
    cleanup: float | str = 1.0,
) -> dict:
    """Mean and per-image scores: {"results": [{dataset, scale, degradation, sr, bicubic, x1, input,
    images}]}; each score is {"psnr", "ssim"} on Y (infinite PSNR written as None)."""
    method = SRMethod(model, temperature, seed, overlap, cleanup)
    results = []
    for ds in datasets:
        name, folder = protocol.resolve_dataset(ds, data_root)
        paths = list_images(folder)
        for degradation in degradations:
            for scale in scales:
                rows = []
                desc = f"{name} x{scale} {degradation}"
                for k, path in enumerate(tqdm(paths, desc=desc, disable=not progress, file=sys.stderr)):
                    hr = modcrop(protocol.load_image(path), scale)  # grey stays grey, scored as such
                    rng = protocol.image_rng(path.stem, scale, seed)  # realistic and noise<s> draw from it
                    lr = make_lr(hr, scale, degradation, rng)
                    out = method.outputs(lr, jpeg_quality(degradation))
                    bic, clean_lr = imresize_uint8(lr, scale), bicubic_lr(hr, scale)

                    def score(a, b, shave):
                        return {"psnr": psnr_y(a, b, shave=shave), "ssim": ssim_y(a, b, shave=shave)}

                    rows.append(
                        {
                            "name": path.stem,
                            "sr": score(out[scale], hr, scale) | {"niqe": niqe_or_none(out[scale])},
                            "bicubic": score(bic, hr, scale) | {"niqe": niqe_or_none(bic)},
                            "hr": {"niqe": niqe_or_none(hr)},
                            "x1": score(out[1], clean_lr, 0),
                            "input": score(lr, clean_lr, 0),
                        }
                    )
                    if crops_dir is not None and k < CROPS_PER_SET:
                        crops_dir.mkdir(parents=True, exist_ok=True)
                        png = side_by_side(lr, bic, out[scale], hr, out[1], clean_lr, scale)
                        Image.fromarray(png).save(
                            crops_dir / f"{name}_{path.stem}_x{scale}_{degradation}.png"
                        )
                mean = {
                    key: mean_scores([r[key] for r in rows]) for key in ("sr", "bicubic", "hr", "x1", "input")
                }
                results.append(dict(dataset=name, scale=scale, degradation=degradation, **mean, images=rows))
    return protocol._finite({"results": results, "temperature": temperature, "seed": seed})


# The acceptance suite's x1 ladder (test/acceptance): one defect each, from faint to strong.
LADDER = ("jpeg90", "jpeg60", "jpeg30", "noise3", "noise10", "noise25", "blur0.8", "blur1.5")


def ladder_rung(clean: np.ndarray, rung: str, rng: np.random.Generator) -> np.ndarray:
    """The clean image (uint8 HxWx3) with one defect of the ladder: jpeg<q>, noise<sigma>, blur<sigma>."""
    x = clean.astype(np.float32) / 255.0
    if rung.startswith("jpeg"):
        x = degrade.jpeg(x, int(rung[4:]))
    elif rung.startswith("noise"):
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * float(rung[5:]) / 255.0
    else:
        x = degrade.gaussian_blur(x, float(rung[4:]))
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def x1_ladder_per_image(
    model: Model,
    dataset: str = "Set5",
    rungs: tuple[str, ...] = LADDER,
    data_root: Path | None = None,
    cleanup: float | str = 1.0,
) -> dict[str, dict[str, float]]:
    """Per colour image of the set: how much closer x1 brings each rung's input to the clean image
    (PSNR-RGB of x1 minus the input's, dB; negative: x1 made it worse), and the PSNR-RGB of x1 of the
    clean image against itself. The clean images: the dev set's colour HR shrunk x2 (MATLAB bicubic)."""
    method = SRMethod(model, 0.0, 0, None, cleanup)
    _, folder = protocol.resolve_dataset(dataset, data_root)
    scores = {}
    for path in list_images(folder):
        hr = modcrop(protocol.load_image(path), 2)
        if hr.ndim == 2:
            continue
        clean = bicubic_lr(hr, 2)
        row = {"clean_psnr": psnr_rgb(method.outputs(clean)[1], clean)}
        for rung in rungs:
            lr = ladder_rung(clean, rung, protocol.image_rng(path.stem, 1, 0))
            x1 = method.outputs(lr, jpeg_quality(rung))[1]
            row[f"gain_{rung}"] = psnr_rgb(x1, clean) - psnr_rgb(lr, clean)
        scores[path.stem] = row
    if not scores:
        raise ValueError(f"{dataset} has no colour image: the x1 ladder scores colour images only")
    return scores


def worst_of(per_image: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each ladder score on the image where it is lowest."""
    rows = list(per_image.values())
    return {k: min(r[k] for r in rows) for k in rows[0]}


def x1_ladder(
    model: Model, dataset: str = "Set5", rungs: tuple[str, ...] = LADDER, data_root: Path | None = None
) -> dict[str, float]:
    """`x1_ladder_per_image` on the worst image of the set: what the acceptance checks hold to."""
    return worst_of(x1_ladder_per_image(model, dataset, rungs, data_root))


def niqe_or_none(img: np.ndarray) -> float | None:
    """NIQE of a full-size output; None for images without two whole 96x96 blocks (NIQE has no value)."""
    try:
        return niqe(img)
    except ValueError:
        return None


def mean_scores(scores: list[dict]) -> dict:
    """Mean of every metric over images; NIQE over the images that have one (None if none has)."""
    out = {}
    for m in scores[0]:
        values = [s[m] for s in scores if s[m] is not None]
        out[m] = float(np.mean(values)) if values else None
    return out


def _niqe(s: dict) -> str:
    return "-" if s.get("niqe") is None else f"{s['niqe']:.2f}"


def _fmt(s: dict) -> str:
    p = s["psnr"]
    return ("inf" if p is None or not math.isfinite(p) else f"{p:.2f}") + f" / {s['ssim']:.4f}"


def report_markdown(title: str, info: dict, ev: dict) -> str:
    lines = [f"# {title}", ""] + [f"- {k}: {v}" for k, v in info.items()] + [""]
    lines += [
        "PSNR (dB) / SSIM on Y. x_s: the model's x2 / x4 output vs HR (shave s), bicubic = MATLAB bicubic of",
        "the same LR. x1: the model's x1 output vs the clean LR (MATLAB bicubic of HR); input: the LR",
        "it was given vs the same clean LR. NIQE (no reference, lower is better) of bicubic, the model's x_s",
        "and the HR image itself, over the images with two whole 96x96 blocks.",
        "",
        "| dataset | degradation | scale | bicubic | model x_s | NIQE bicubic / model / HR | input | x1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in ev["results"]:
        niqes = " / ".join(_niqe(r.get(k, {})) for k in ("bicubic", "sr", "hr"))
        lines.append(
            f"| {r['dataset']} | {r['degradation']} | x{r['scale']} | {_fmt(r['bicubic'])} | {_fmt(r['sr'])} "
            f"| {niqes} | {_fmt(r['input'])} | {_fmt(r['x1'])} |"
        )
    if "x1_ladder" in ev:
        rungs = [k for k in next(iter(ev["x1_ladder"].values())) if k.startswith("gain_")]
        lines += [
            "",
            "x1 on the acceptance ladder: PSNR-RGB of x1 minus its input's, both against the clean image",
            "(the HR shrunk x2), on the worst image of the set (negative: x1 made it worse); clean: x1",
            "of the clean image, PSNR-RGB.",
            "",
            "| dataset | clean | " + " | ".join(r.removeprefix("gain_") for r in rungs) + " |",
            "| --- | --- |" + " --- |" * len(rungs),
        ]
        for ds, row in ev["x1_ladder"].items():
            gains = " | ".join(f"{row[r]:+.2f}" for r in rungs)
            lines.append(f"| {ds} | {row['clean_psnr']:.2f} | {gains} |")
    if "x1_ladder_per_image" in ev:
        lines += [
            "",
            "Per image: the mean gain over the colour images (in brackets: how many x1 made worse).",
            "",
        ]
        lines += ["| dataset | " + " | ".join(r.removeprefix("gain_") for r in rungs) + " |"]
        lines += ["| --- |" + " --- |" * len(rungs)]
        for ds, scores in ev["x1_ladder_per_image"].items():
            cells = []
            for r in rungs:
                gains = [row[r] for row in scores.values()]
                cells.append(f"{np.mean(gains):+.2f} ({sum(g < 0 for g in gains)} of {len(gains)})")
            lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_markdown(named: dict[str, dict]) -> str:
    """One table over several evaluations of the same rows (--json files), e.g. the DPO ablation: the
    bicubic baseline once, then each model's x_s and x1, the best of each row in bold."""
    names, evs = list(named), list(named.values())
    key = [(r["dataset"], r["degradation"], r["scale"]) for r in evs[0]["results"]]
    for name, ev in named.items():
        if [(r["dataset"], r["degradation"], r["scale"]) for r in ev["results"]] != key:
            raise ValueError(f"{name} was not evaluated on the same rows as {names[0]}")

    def cells(stats: list[dict]) -> list[str]:
        psnrs = [st["psnr"] if st["psnr"] is not None else math.inf for st in stats]  # None: identical
        best = max(psnrs)
        return [f"**{_fmt(st)}**" if p == best else _fmt(st) for st, p in zip(stats, psnrs, strict=True)]

    def niqe_cells(stats: list[dict]) -> list[str]:  # lower is better; "-" where not measured
        values = [st.get("niqe") for st in stats]
        best = min((v for v in values if v is not None), default=None)
        return [
            f"**{_niqe(st)}**" if v is not None and v == best else _niqe(st)
            for st, v in zip(stats, values, strict=True)
        ]

    head = ["dataset", "degradation", "scale", "bicubic"] + [f"{n} x_s" for n in names]
    head += ["NIQE bicubic"] + [f"{n} NIQE" for n in names] + ["NIQE HR"]
    head += ["input"] + [f"{n} x1" for n in names]
    lines = ["| " + " | ".join(head) + " |", "| --- " * len(head) + "|"]
    for i, (dataset, degradation, scale) in enumerate(key):
        rows = [ev["results"][i] for ev in evs]
        sr = cells([rows[0]["bicubic"]] + [r["sr"] for r in rows])
        nq = niqe_cells([rows[0]["bicubic"]] + [r["sr"] for r in rows]) + [_niqe(rows[0].get("hr", {}))]
        x1 = cells([rows[0]["input"]] + [r["x1"] for r in rows])
        lines.append(f"| {dataset} | {degradation} | x{scale} | " + " | ".join(sr + nq + x1) + " |")
    return "\n".join(lines) + "\n"


class OnnxModel:
    """An exported model folder (model.onnx + manifest.json, see `hvar.export`) run by onnxruntime on
    the CPU, called like the PyTorch model: the evaluation then scores the very file we ship."""

    def __init__(self, folder: Path, threads: int = 0):
        from hvar.export import ort_session

        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.tile, self.tokens = self.manifest["tile"], self.manifest["tokens"]
        self.overlap = self.manifest.get("overlap")  # None: the runner's default, a quarter tile
        self.tile_step = self.manifest.get("tileStep")  # set: tiles fitted to each image (`hvar.tiling`)
        self.cleanup = self.manifest.get("cleanup", False)  # the graph takes a clean-up strength
        self.session = ort_session(folder / "model.onnx", threads)

    def eval(self) -> OnnxModel:
        return self

    def __call__(
        self,
        lr01_N3TT: torch.Tensor,
        noise_NL: torch.Tensor,
        temperature_1: torch.Tensor,
        cleanup: torch.Tensor | None = None,
    ):
        feeds = {"lr": lr01_N3TT.numpy()}
        if self.tokens:  # a model without generated detail takes neither noise nor temperature
            feeds |= {"noise": noise_NL.numpy(), "temperature": temperature_1.numpy().astype(np.float32)}
        if self.cleanup:  # as the runner feeds it: 1 unless asked
            strength = torch.ones(1) if cleanup is None else cleanup
            feeds["cleanup"] = strength.numpy().astype(np.float32)
        return [torch.from_numpy(x) for x in self.session.run(list(contract.IMAGES), feeds)]


Model = HVAR | Floor | OnnxModel


def load_model(path: str | Path, threads: int = 0) -> Model:
    """An exported model folder (onnxruntime), a floor run or an H-VAR run folder (PyTorch)."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return OnnxModel(path, threads)
    return load_floor(path) if (path / FLOOR_CONFIG).exists() else load_hvar(path)


def strength(text: str) -> float | str:
    """--cleanup's type: a number from 0 to 1, or "auto" (each image's own, `hvar.noise`)."""
    if text == AUTO:
        return AUTO
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"the clean-up strength is from 0 to 1, not {value}")
    return value


def degradation(name: str) -> str:
    """--degradation's type: a name `make_lr` knows."""
    if name in DEGRADATIONS or jpeg_quality(name) is not None or noise_sigma(name) is not None:
        return name
    raise argparse.ArgumentTypeError(
        f"unknown degradation {name!r}; choose from {DEGRADATIONS}, jpeg1..jpeg100 or noise1..noise99"
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", nargs="+", metavar="NAME=JSON",
                    help="print one table over earlier --json results instead of evaluating")  # fmt: skip
    ap.add_argument("--run", help="H-VAR run folder (hvar.train_transformer), or an exported "
                    "model folder with manifest.json (hvar.export), run by onnxruntime")  # fmt: skip
    ap.add_argument(
        "--dataset", nargs="+", default=["Set5", "Set14"], help="names under <data-root>/dev, or HR folders"
    )
    ap.add_argument("--scale", nargs="+", type=int, default=[2, 4], choices=[2, 4])
    ap.add_argument("--degradation", nargs="+", default=["bicubic", "realistic"], type=degradation,
                    help="bicubic, realistic, jpeg<q> (the bicubic LR as a JPEG of quality q) or noise<s> "
                    "(the bicubic LR with Gaussian noise of s levels, seeded)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="realistic degradation and sampling noise seed")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy decoding")
    ap.add_argument("--cleanup", type=strength, default=1.0,
                    help="clean-up strength of a model that takes one (1: as trained, 0: none; auto: "
                    "1 for a noisy image, else 0.75, as the API's default)")  # fmt: skip
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--crops", type=Path, default=None, help="write side-by-side PNG crops here")
    ap.add_argument("--overlap", type=int, default=None,
                    help="LR pixels shared by tiles (default: the model's, else T/4)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--ladder", action="store_true",
                    help="also x1's gain on the acceptance ladder, per image and worst")  # fmt: skip
    args = ap.parse_args(argv)
    if args.compare:
        pairs = [c.split("=", 1) for c in args.compare]
        if any(len(p) != 2 for p in pairs):
            ap.error("--compare takes NAME=JSON pairs")
        missing = [f for _, f in pairs if not Path(f).is_file()]
        if missing:
            ap.error(f"--compare: no such file {', '.join(missing)}")
        named = {n: json.loads(Path(f).read_text()) for n, f in pairs}
        try:
            md = compare_markdown(named)
        except ValueError as e:
            ap.error(f"--compare: {e}")
        print(md, end="")
        if args.md:
            args.md.write_text(md)
        return named
    if not args.run:
        ap.error("give --run (or --compare)")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.nnpack.set_flags(False)
    model = load_model(args.run, args.threads)
    per_image = {}
    if args.ladder:  # first: the cheaper part, and the one a grey-only set cannot give
        try:
            per_image = {
                ds: x1_ladder_per_image(model, ds, data_root=args.data_root, cleanup=args.cleanup)
                for ds in args.dataset
            }
        except ValueError as e:
            ap.error(f"--ladder: {e}")
    ev = evaluate(model, tuple(args.dataset), tuple(args.scale), tuple(args.degradation), args.seed,
                  args.temperature, args.crops, args.data_root, overlap=args.overlap,
                  cleanup=args.cleanup)  # fmt: skip
    if per_image:
        ev["x1_ladder"] = {ds: worst_of(scores) for ds, scores in per_image.items()}
        ev["x1_ladder_per_image"] = per_image
    md = report_markdown(
        f"H-VAR {Path(args.run).name}",
        {"run": args.run, "temperature": args.temperature, "cleanup": args.cleanup},
        ev,
    )
    print(md, end="")
    if args.md:
        args.md.write_text(md)
    if args.json:
        args.json.write_text(json.dumps(ev, indent=2) + "\n")
    return ev


if __name__ == "__main__":
    main()
