"""How an image of any size is cut into LR tiles and the tiles' outputs put back together: the same
specification as the runner's (`gpu-runner/src/tiling/{plan,blend}.ts`), so that the evaluation scores
what the service returns.

  starts   tiles of side T every T - overlap pixels from 0; the last one ends at the image edge (real
           pixels beat reflected ones); a side shorter than a tile gets one tile, filled by reflection
  weights  per axis, 1 inside a tile and a sin^2 ramp over the overlap (times the scale) on each side
           that has a neighbour; a pixel's value is the weighted mean of the tiles that cover it

Both implementations are checked against one golden file, `test/fixtures/tiling-golden.json`, written by
`python -m hvar.tiling --golden ../test/fixtures/tiling-golden.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Left (top) edges of the tiles covering [0, n)."""
    if not 0 <= overlap * 2 <= tile:
        raise ValueError(f"overlap must be in [0, tile/2], got {overlap} for tile {tile}")
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, tile - overlap))
    return starts + [n - tile]


def axis_weights(tile_out: int, ramp_out: int, before: bool, after: bool) -> np.ndarray:
    """(tile_out,) float32 blend weights of one tile along one axis at an output scale."""
    w = np.ones(tile_out, np.float32)
    ramp = (np.sin(np.pi / 2 * (np.arange(ramp_out) + 0.5) / ramp_out) ** 2).astype(np.float32)
    if before:
        w[:ramp_out] *= ramp
    if after:
        w[tile_out - ramp_out :] *= ramp[::-1]
    return w


def reflect_pad(img_HWC: np.ndarray, tile: int) -> np.ndarray:
    """An image smaller than a tile, filled out to the tile by mirroring without repeating the edge."""
    H, W = img_HWC.shape[:2]
    pad = ((0, max(0, tile - H)), (0, max(0, tile - W)), (0, 0))
    return np.pad(img_HWC, pad, mode="reflect" if min(H, W) > 1 else "edge") if tile > min(H, W) else img_HWC


class Blender:
    """Accumulates weighted tile outputs at one scale; `image()` is their weighted mean."""

    def __init__(
        self, hw: tuple[int, int], ys: list[int], xs: list[int], tile: int, overlap: int, scale: int
    ):
        height, width = hw
        self.scale, self.tile_out = scale, tile * scale
        ramp = overlap * scale
        self.wy = [axis_weights(self.tile_out, ramp, i > 0, i < len(ys) - 1) for i in range(len(ys))]
        self.wx = [axis_weights(self.tile_out, ramp, i > 0, i < len(xs) - 1) for i in range(len(xs))]
        self.sum = np.zeros((3, height * scale, width * scale), np.float64)
        self.weight = np.zeros((height * scale, width * scale), np.float64)

    def add(self, row: int, column: int, y: int, x: int, out_3SS: np.ndarray) -> None:
        s, t = self.scale, self.tile_out
        h, w = min(t, self.sum.shape[1] - y * s), min(t, self.sum.shape[2] - x * s)
        weight = np.outer(self.wy[row][:h], self.wx[column][:w])
        self.sum[:, y * s : y * s + h, x * s : x * s + w] += out_3SS[:, :h, :w] * weight
        self.weight[y * s : y * s + h, x * s : x * s + w] += weight

    def image(self) -> np.ndarray:
        """(3, sH, sW) float in the outputs' range."""
        return self.sum / self.weight


# ---- the golden file both implementations are tested against --------------------------------------------
GOLDEN_CASES = [  # (length, tile, overlap, scale)
    (20, 32, 8, 1), (32, 32, 8, 2), (33, 32, 8, 1), (100, 32, 8, 4), (130, 64, 21, 1), (200, 64, 16, 2),
]  # fmt: skip


def golden() -> list[dict]:
    out = []
    for n, tile, overlap, scale in GOLDEN_CASES:
        starts = tile_starts(n, tile, overlap)
        weights = [
            axis_weights(tile * scale, overlap * scale, i > 0, i < len(starts) - 1)
            for i in range(len(starts))
        ]
        out.append(
            {
                "length": n,
                "tile": tile,
                "overlap": overlap,
                "scale": scale,
                "starts": starts,
                "weights": [[round(float(v), 7) for v in w] for w in weights],
            }  # fmt: skip
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", type=Path, required=True, help="write the golden file here")
    args = ap.parse_args(argv)
    args.golden.write_text(json.dumps({"cases": golden()}, separators=(",", ":")) + "\n")
    print(f"wrote {args.golden} ({len(GOLDEN_CASES)} cases)")


if __name__ == "__main__":
    main()
