"""Export a restoration-stage run (`hvar.train_floor`) to the runner's model contract, verified.

    python -m hvar.export --run runs/floor-base --out ../gpu-runner/models/hvar --version 2.0.0-floor

(`hvar.export` hands floor runs to `export_floor`.) The floor generates nothing, so its manifest says
`tokens: 0`: lr [N,3,T,T] in [0, 1] -> x1 [N,3,T,T], x2 [N,3,2T,2T], x4 [N,3,4T,4T] in [0, 1]; a
two-stage floor also takes `cleanup` [1], the share of the restorer's correction x1 keeps before the
upscaler sees it (manifest `cleanup: true`). With `--tile-step` the tiles' sides are free
(lr [N,3,H,W]), since the floor computes the same at any size, and the runner fits its tiles to each
image. The weights stay float32
(the whole network is 0.6 MB). The folder gets the same files as an H-VAR export: model.onnx (replaced
only once onnxruntime reproduces PyTorch), manifest.json, and parity.safetensors (fixed tiles and
PyTorch's outputs, which the runner's own test replays through onnxruntime-node).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as save_np

from hvar import contract
from hvar.config import SCALES
from hvar.export import check_overlap, ort_session, photo_tiles, psnr01, sha256
from hvar.floor import load_floor

MIN_PSNR = 60.0  # dB between onnxruntime's and PyTorch's float32 outputs: rounding only
PARITY_BYTES = 6_000_000  # parity.safetensors at most: committed, it travels with every device call


def parity_tiles(height: int, width: int) -> int:
    """Tiles in the parity file: two, or one where two tiles' outputs (x4: 16 times a tile) are too big."""
    bytes_per_tile = 3 * height * width * (4 + 2 * (1 + 4 + 16))  # lr in float32; x1, x2, x4 in float16
    return 2 if 2 * bytes_per_tile <= PARITY_BYTES else 1


def feeds(model: torch.nn.Module, lr: np.ndarray, cleanup: float = 1.0) -> dict[str, np.ndarray]:
    """The graph's inputs for these tiles: the strength too where the model takes one."""
    strength = {"cleanup": np.array([cleanup], np.float32)} if contract.takes_cleanup(model) else {}
    return {"lr": lr} | strength


@torch.no_grad()
def verify(model: torch.nn.Module, path: Path, lr: np.ndarray, cleanup: float = 1.0) -> dict[str, float]:
    """PSNR of onnxruntime's outputs against PyTorch's for the same tiles, per output."""
    strength = {"cleanup": torch.tensor([cleanup])} if contract.takes_cleanup(model) else {}
    want = [x.numpy() for x in model.eval()(torch.from_numpy(lr), **strength)]
    got = ort_session(path).run(list(contract.IMAGES), feeds(model, lr, cleanup))
    return {name: psnr01(g, w) for name, g, w in zip(contract.IMAGES, got, want, strict=True)}


def fitted_shape(tile: int, step: int) -> tuple[int, int]:
    """A tile shape a fitted graph must also compute right, neither square nor the largest: its parity
    file's (a largest tile's outputs would make that file 4x as big)."""
    return max(step, tile // 2 // step * step), max(step, tile * 3 // 8 // step * step)


def export_floor(args: argparse.Namespace) -> None:
    model = load_floor(args.run)
    tile, step = args.tile or model.cfg.tile, args.tile_step
    if step is not None and tile % step:
        raise SystemExit(f"export: the tile side {tile} is not a multiple of --tile-step {step}")
    model.cfg = dataclasses.replace(model.cfg, tile=tile)  # the serving tile is the export's choice
    check_overlap(args.overlap, tile)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path, candidate = args.out / "model.onnx", args.out / "model.onnx.tmp"
    start = time.perf_counter()
    contract.save(contract.export(model, candidate, fitted=step is not None), candidate)
    size_mb, seconds = candidate.stat().st_size / 1e6, time.perf_counter() - start
    print(f"exported {onnx_path} ({size_mb:.2f} MB, fp32) in {seconds:.1f} s")

    h, w = (tile, tile) if step is None else fitted_shape(tile, step)
    lr = np.ascontiguousarray(photo_tiles(tile, parity_tiles(h, w))[:, :, :h, :w])
    parity = verify(model, candidate, lr)
    if step is not None:  # and on the largest tile
        largest = verify(model, candidate, photo_tiles(tile, 1))
        parity |= {f"{k} {tile}x{tile}": v for k, v in largest.items()}
    if model.cleanup:  # and with half the clean-up
        parity |= {f"{k} cleanup 0.5": v for k, v in verify(model, candidate, lr, 0.5).items()}
    print("onnxruntime vs PyTorch, PSNR: " + ", ".join(f"{k} {v:.1f} dB" for k, v in parity.items()))
    if min(parity.values()) < MIN_PSNR:
        candidate.unlink()
        raise SystemExit(f"export: onnxruntime does not compute what PyTorch computes ({parity}); "
                         "the model folder was left as it was")  # fmt: skip
    os.replace(candidate, onnx_path)
    with torch.no_grad():  # answers in float16: rounding at ~80 dB, far above MIN_PSNR
        answers = {
            f"greedy.{n}": x.numpy().astype(np.float16)
            for n, x in zip(contract.IMAGES, model(torch.from_numpy(lr)), strict=True)
        }
    save_np(
        {k: np.ascontiguousarray(v) for k, v in ({"lr": lr} | answers).items()},
        str(args.out / "parity.safetensors"),
    )

    manifest = {
        "id": args.id,
        "version": args.version,
        "tile": tile,
        "overlap": args.overlap if args.overlap is not None else model.overlap,
        **({"tileStep": step} if step is not None else {}),
        "scales": list(SCALES),
        "tokens": 0,
        **({"cleanup": True} if model.cleanup else {}),
        "opset": contract.OPSET,
        "precision": "fp32",
        "sha256": sha256(onnx_path),
        "config": {"floor": model.cfg.to_dict()},
        "evaluation": json.loads(args.evaluation.read_text()) if args.evaluation else {},
        "training": json.loads(args.training.read_text()) if args.training else {},
        "parameters": sum(p.numel() for p in model.parameters()),
        "verification": {"psnr_vs_pytorch": parity},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
