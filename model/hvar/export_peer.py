"""The published x4 networks the model is measured against, as runner model folders (bench/runner).

    python -m hvar.export_peer --network rlfn-x4 --tile 128 --out ../bench/runner/.peers/rlfn-x4-t128

writes model.onnx and manifest.json in the runner's contract, so that the runner runs a peer exactly as it
runs the model: same onnxruntime settings, same tiling, batching and blending (with `--tile-step`, the
served model's, tiles fitted to each image as the model's are). The weights are the authors'
(`../shared/pretrained`, trained on research-only data): the folders are a local cache, never committed.

- `span-ch28`: SPAN as published, as the floor starts from it (`hvar.floor.from_span`): x4 is SPAN's, x2 the
  area average of x4, x1 the input. Same architecture as the shipped model, so the same cost per tile.
- `rlfn-x4`: RLFN (`hvar.rlfn`), wrapped the same way: x4 is RLFN's, x2 its area average, x1 the input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hvar import contract
from hvar.config import FLOOR_PRESETS, SCALES
from hvar.export import sha256
from hvar.export_floor import MIN_PSNR, fitted_shape, verify
from hvar.floor import from_span
from hvar.rlfn import RLFN, RLFN_WEIGHTS, load_rlfn
from hvar.train_floor import SPAN_WEIGHTS


class X4Peer(nn.Module):
    """A x4 network in the runner's contract: lr [N,3,T,T] in [0, 1] -> x1 (the input), x2 (x4's area
    average), x4 (the network's, clamped), so that only x4 is the network's work."""

    tokens = 0

    def __init__(self, net: RLFN, tile: int):
        super().__init__()
        self.net, self.tile = net, tile

    def forward(self, lr01_N3TT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x4 = (self.net(lr01_N3TT * 255.0) / 255.0).clamp(0, 1)  # RLFN works in [0, 255]
        return lr01_N3TT, F.avg_pool2d(x4, 2), x4


@dataclasses.dataclass(frozen=True)
class Peer:
    build: Callable[[int], nn.Module]  # tile -> a module of the contract (tile, tokens, forward: x1, x2, x4)
    overlap: Callable[[int], int]  # tile -> LR pixels tiles share
    source: dict[str, str]


def span(tile: int) -> nn.Module:
    return from_span(dataclasses.replace(FLOOR_PRESETS["base"], tile=tile), SPAN_WEIGHTS)


PEERS: dict[str, Peer] = {
    "span-ch28": Peer(
        build=span,
        overlap=lambda tile: span(tile).overlap,  # the receptive radius: SPAN is purely local
        source={
            "network": "SPAN-ch28 (Wan et al., 2024), NTIRE 2024 efficient SR, team 38",
            "weights": "../shared/pretrained/span-ch28/team38_span_ch28_slim.pth",
            "license": "MIT; trained on DIV2K and LSDIR (research-only terms)",
        },
    ),
    "rlfn-x4": Peer(
        build=lambda tile: X4Peer(load_rlfn(RLFN_WEIGHTS), tile),
        # Its convolutions' reach, as SPAN's; the attention reaches further, but through the runner a wider
        # overlap changed Set5 x4 by 0.03 dB at most (32.147 at 21 px, 32.144 at 32, 32.123 at 64).
        overlap=lambda tile: min(RLFN().conv_radius, tile // 2),
        source={
            "network": "RLFN (Kong et al., 2022), NTIRE 2022 efficient SR winner",
            "weights": "../shared/pretrained/rlfn/rlfn_x4.pth",
            "license": "Apache-2.0; trained on DIV2K (research-only terms)",
        },
    ),
}


def export_peer(
    model: nn.Module, out: Path, *, id: str, overlap: int, config: dict, step: int | None = None
) -> dict:
    """`model` (tile, tokens 0, forward -> x1, x2, x4) -> `out`/{model.onnx, manifest.json}, verified against
    PyTorch on random tiles (with `step`, also on a smaller oblong one); `out` is replaced only once both
    files are written."""
    tile = model.tile
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    onnx_path = tmp / "model.onnx"
    contract.save(contract.export(model, onnx_path, fitted=step is not None), onnx_path)
    lr = np.random.default_rng(0).random((2, 3, tile, tile), dtype=np.float32)
    parity = verify(model, onnx_path, lr)
    if step is not None:
        h, w = fitted_shape(tile, step)
        oblong = verify(model, onnx_path, np.ascontiguousarray(lr[:1, :, :h, :w]))
        parity |= {f"{k} {h}x{w}": v for k, v in oblong.items()}
    if min(parity.values()) < MIN_PSNR:
        shutil.rmtree(tmp)
        raise SystemExit(f"export_peer: onnxruntime does not compute what PyTorch computes ({parity})")
    manifest = {
        "id": id,
        "version": "published",
        "tile": tile,
        "overlap": overlap,
        **({"tileStep": step} if step is not None else {}),
        "scales": list(SCALES),
        "tokens": 0,
        "opset": contract.OPSET,
        "precision": "fp32",
        "sha256": sha256(onnx_path),
        "config": config,
        "evaluation": {},
        "parameters": sum(p.numel() for p in model.parameters()),
        # x1 passes the input through: infinite PSNR, which JSON cannot say (null: identical).
        "verification": {"psnr_vs_pytorch": {k: v if math.isfinite(v) else None for k, v in parity.items()}},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", choices=sorted(PEERS), required=True)
    ap.add_argument("--tile", type=int, required=True, help="LR tile side, the served model's (its manifest)")
    ap.add_argument("--tile-step", type=int, default=None, help="the served model's (manifest's tileStep)")
    ap.add_argument("--out", type=Path, required=True, help="model folder, e.g. ../bench/runner/.peers/<id>")
    args = ap.parse_args(argv)
    if args.tile < 16 or args.tile % 4:
        ap.error("--tile must be a multiple of 4, at least 16 (RLFN's attention pools 7 of its stride-2 map)")
    if args.tile_step is not None and (args.tile_step < 16 or args.tile % args.tile_step):
        ap.error("--tile-step must divide --tile, at least 16")
    torch.backends.nnpack.set_flags(False)
    peer = PEERS[args.network]
    manifest = export_peer(
        peer.build(args.tile),
        args.out,
        id=args.network,
        overlap=peer.overlap(args.tile),
        config={**peer.source, "tile": args.tile},
        step=args.tile_step,
    )
    parity = manifest["verification"]["psnr_vs_pytorch"].items()
    psnr = ", ".join(f"{k} {'identical' if v is None else f'{v:.0f} dB'}" for k, v in parity)
    print(f"wrote {args.out} ({args.network}, tile {args.tile}; onnxruntime vs PyTorch: {psnr})")


if __name__ == "__main__":
    main()
