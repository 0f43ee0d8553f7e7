"""How an image of any size is cut into LR tiles and the tiles' outputs put back together: the same
specification as the runner's (`gpu-runner/src/tiling/{plan,blend}.ts`), so that the evaluation scores
what the service returns.

  starts   the image is mirrored by `overlap` pixels on every side (so its edges lie as deep inside a
           tile as the seams between tiles, and zero padding inside the network never reaches them),
           then cut into tiles of side T every T - overlap pixels from -overlap; the last one ends at
           the mirrored edge (real pixels beat reflected ones); a short side gets one tile
  sides    a model whose graph takes any tile side that is a multiple of `step` (its manifest's
           `tileStep`) gets tiles fitted to each image (`fit_side`): along each axis the fewest tiles
           of side at most T, each as small as covers the axis; other models get T x T tiles
  pixels   read through `reflect_index` (mirroring without repeating the edge), wherever they fall
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
    """Left (top) edges of the tiles covering [-overlap, n + overlap)."""
    if not 0 <= overlap * 2 <= tile:
        raise ValueError(f"overlap must be in [0, tile/2], got {overlap} for tile {tile}")
    padded = n + 2 * overlap
    starts = list(range(0, padded - tile, tile - overlap)) + [max(0, padded - tile)]
    return [s - overlap for s in starts]


def fit_side(n: int, tile: int, overlap: int, step: int) -> int:
    """The tile side along an axis of `n` pixels for a graph that takes sides that are multiples of
    `step` up to `tile`: the fewest tiles that cover [-overlap, n + overlap), each as short as they can be.
    Tiles of side T cost the whole T x T wherever the image ends, so a 480-px axis costs 4 tiles of 192 px
    (768) where 2 of 288 (576) cover it."""
    if step < 1 or tile % step:
        raise ValueError(f"the tile side {tile} must be a multiple of the step {step}")
    padded = n + 2 * overlap
    count = 1 if padded <= tile else -(-(padded - overlap) // (tile - overlap))
    side = -(-(padded - overlap) // count) + overlap
    side = max(side, 2 * overlap)
    return min(tile, -(-side // step) * step)


def reflect_index(i: np.ndarray, n: int) -> np.ndarray:
    """Indices into [0, n) mirrored about the edges without repeating them (numpy's `reflect`)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    m = np.mod(i, period)
    return np.where(m < n, m, period - m)


def cut_tile(img_HWC: np.ndarray, y: int, x: int, height: int, width: int | None = None) -> np.ndarray:
    """The height x width window (square when `width` is None) at (y, x), which may reach past the
    image: mirrored pixels there."""
    rows = reflect_index(np.arange(y, y + height), img_HWC.shape[0])
    cols = reflect_index(np.arange(x, x + (height if width is None else width)), img_HWC.shape[1])
    return img_HWC[rows][:, cols]


def axis_weights(tile_out: int, ramp_out: int, before: bool, after: bool) -> np.ndarray:
    """(tile_out,) float32 blend weights of one tile along one axis at an output scale."""
    w = np.ones(tile_out, np.float32)
    ramp = (np.sin(np.pi / 2 * (np.arange(ramp_out) + 0.5) / ramp_out) ** 2).astype(np.float32)
    if before:
        w[:ramp_out] *= ramp
    if after:
        w[tile_out - ramp_out :] *= ramp[::-1]
    return w


class Blender:
    """Accumulates weighted tile outputs at one scale; `image()` is their weighted mean."""

    def __init__(
        self,
        hw: tuple[int, int],
        ys: list[int],
        xs: list[int],
        tile_hw: tuple[int, int],
        overlap: int,
        scale: int,
    ):
        height, width = hw
        self.scale, self.out_h, self.out_w = scale, tile_hw[0] * scale, tile_hw[1] * scale
        ramp = overlap * scale
        self.wy = [axis_weights(self.out_h, ramp, i > 0, i < len(ys) - 1) for i in range(len(ys))]
        self.wx = [axis_weights(self.out_w, ramp, i > 0, i < len(xs) - 1) for i in range(len(xs))]
        self.sum = np.zeros((3, height * scale, width * scale), np.float64)
        self.weight = np.zeros((height * scale, width * scale), np.float64)

    def add(self, row: int, column: int, y: int, x: int, out_3SS: np.ndarray) -> None:
        """Tile (row, column) at LR origin (y, x); only its part on the image counts."""
        y0, x0 = y * self.scale, x * self.scale
        top, left = max(0, -y0), max(0, -x0)
        bottom, right = min(self.out_h, self.sum.shape[1] - y0), min(self.out_w, self.sum.shape[2] - x0)
        weight = np.outer(self.wy[row][top:bottom], self.wx[column][left:right])
        self.sum[:, y0 + top : y0 + bottom, x0 + left : x0 + right] += (
            out_3SS[:, top:bottom, left:right] * weight
        )
        self.weight[y0 + top : y0 + bottom, x0 + left : x0 + right] += weight

    def image(self) -> np.ndarray:
        """(3, sH, sW) float in the outputs' range."""
        return self.sum / self.weight


# ---- the golden file both implementations are tested against --------------------------------------------
GOLDEN_CASES = [  # (length, tile, overlap, scale)
    (20, 32, 8, 1), (32, 32, 8, 2), (33, 32, 8, 1), (100, 32, 8, 4), (130, 64, 21, 1), (200, 64, 16, 2),
]  # fmt: skip


FITTED_CASES = [  # (length, tile, overlap, step): a short axis, an exact fit, rounding up, many tiles
    (8, 64, 8, 16), (48, 64, 8, 16), (60, 64, 8, 16), (100, 64, 8, 16),
    (270, 384, 32, 16), (480, 384, 32, 16), (1000, 384, 32, 32),
]  # fmt: skip


def golden_fitted() -> list[dict]:
    out = []
    for n, tile, overlap, step in FITTED_CASES:
        side = fit_side(n, tile, overlap, step)
        out.append({"length": n, "tile": tile, "overlap": overlap, "step": step, "side": side,
                    "starts": tile_starts(n, side, overlap)})  # fmt: skip
    return out


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
    doc = {"cases": golden(), "fitted": golden_fitted()}
    args.golden.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.golden} ({len(GOLDEN_CASES)} cases, {len(FITTED_CASES)} fitted)")


if __name__ == "__main__":
    main()
