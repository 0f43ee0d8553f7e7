"""MATLAB-compatible bicubic `imresize`, the convention every SR benchmark is built on.

Published numbers (and the `LR_bicubic` copies of Set5) come from MATLAB's `imresize(x, 1/s, 'bicubic')`,
which differs from PIL/OpenCV/PyTorch bicubic in three ways: the Keys kernel uses a=-0.5 (not -0.75),
the kernel is widened by 1/scale when shrinking (antialiasing), and out-of-range taps are mirrored.
Each dimension is a linear map, so we build it as a dense (out_len x in_len) matrix: that is also what
the ONNX export uses as a fixed resize operator.
"""

import math

import numpy as np

KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels, before antialias widening


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a=-0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def contributions(
    in_len: int, out_len: int, scale: float | None = None, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's per-output taps for one dimension: (indices, weights), both (out_len, taps).

    Indices are 0-based and already mirrored into range. `scale` defaults to out_len / in_len;
    MATLAB uses the user's factor when one is given, which only matters when in_len * scale is fractional.
    """
    if scale is None:
        scale = out_len / in_len
    kernel_width = KERNEL_WIDTH
    if scale < 1 and antialias:
        # Shrinking: stretch the kernel by 1/scale so it low-passes below the new Nyquist rate.
        def kernel(x):
            return scale * cubic(scale * x)

        kernel_width = KERNEL_WIDTH / scale
    else:
        kernel = cubic
    # MATLAB's 1-based mapping from output to input coordinates (pixel centres stay aligned).
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    ind_OT = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices, may fall outside
    w_OT = kernel(u[:, None] - ind_OT)
    w_OT /= w_OT.sum(axis=1, keepdims=True)
    # Mirror out-of-range indices: [1..n, n..1] repeated (MATLAB's symmetric padding).
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx_OT = mirror[np.mod(ind_OT.astype(np.int64) - 1, 2 * in_len)]
    return idx_OT, w_OT


def resize_matrix(
    in_len: int, out_len: int, scale: float | None = None, antialias: bool = True
) -> np.ndarray:
    """Dense (out_len, in_len) float64 weights: `y = W @ x` resizes one dimension like MATLAB."""
    idx_OT, w_OT = contributions(in_len, out_len, scale, antialias)
    W = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), idx_OT.shape[1])
    np.add.at(W, (rows, idx_OT.ravel()), w_OT.ravel())  # add: mirrored taps can hit one pixel twice
    return W


def output_size(in_len: int, scale: float) -> int:
    # MATLAB: ceil(scale * n); the epsilon keeps e.g. 300 * (1/3) from becoming 101.
    return math.ceil(in_len * scale - 1e-9)


def resize_plan(
    in_hw: tuple[int, int],
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    antialias: bool = True,
) -> list[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """The (axis, (indices, weights)) passes MATLAB applies, in MATLAB's order.

    Give either `scale` (same factor on both axes) or `output_shape` (H, W).
    """
    if output_shape is not None:
        out_hw = tuple(int(n) for n in output_shape)
        scales = [o / i for o, i in zip(out_hw, in_hw, strict=True)]
    elif scale is not None:
        out_hw = tuple(output_size(n, scale) for n in in_hw)
        scales = [float(scale), float(scale)]
    else:
        raise ValueError("imresize needs scale or output_shape")
    # MATLAB resizes the dimension with the smaller scale first (cheaper when shrinking); stable on ties.
    plan = []
    for dim in np.argsort(scales, kind="stable"):
        if out_hw[dim] == in_hw[dim] and scales[dim] == 1:
            continue
        plan.append((int(dim), contributions(in_hw[dim], out_hw[dim], scales[dim], antialias)))
    return plan


def _apply(taps: tuple[np.ndarray, np.ndarray], x: np.ndarray, dim: int) -> np.ndarray:
    """Resize axis `dim` of x by a weighted sum of gathered taps (a few per output, not a dense GEMM)."""
    idx_OT, w_OT = taps
    out = None
    for t in range(idx_OT.shape[1]):
        w = w_OT[:, t].reshape((-1,) + (1,) * (x.ndim - 1 - dim))
        term = np.take(x, idx_OT[:, t], axis=dim) * w
        out = term if out is None else out + term
    return out


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Resize a float HxW or HxWxC array like MATLAB `imresize(img, scale, 'bicubic')` on doubles.

    No rounding or clipping: the result is float64 and may overshoot the input range (cubic ringing).
    """
    x = np.asarray(img, dtype=np.float64)
    for dim, taps in resize_plan(x.shape[:2], scale, output_shape, antialias):
        x = _apply(taps, x, dim)
    return x


def round_uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB's float -> uint8 cast: round half away from zero, saturate to 0..255."""
    # floor(x + 0.5) differs from half-away-from-zero only below zero, which saturates to 0 either way.
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def imresize_uint8(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB `imresize` on a uint8 image: uint8 out, and uint8 between the two passes.

    MATLAB casts back to the input class after each dimension; skipping that intermediate rounding
    leaves ~15% of pixels one level off the benchmark LR files, keeping it makes them bit-exact.
    """
    if img.dtype != np.uint8:
        raise TypeError(f"imresize_uint8 expects uint8, got {img.dtype}")
    x = img
    for dim, taps in resize_plan(img.shape[:2], scale, output_shape):
        x = round_uint8(_apply(taps, x.astype(np.float64), dim))
    return x
