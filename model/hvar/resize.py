"""Latent and image resizes as fixed (out x in) matrices.

The quantizer resizes token maps between a handful of known sizes. Writing each resize as
`M_h @ x @ M_w^T` with a precomputed matrix makes it (a) identical to PyTorch's convention
(`F.interpolate(mode='bicubic', align_corners=False)` and `mode='area'`), and (b) a plain MatMul in an
ONNX graph with no resize-op semantics for the runtime to get wrong. Not MATLAB's antialiased
`imresize`: that one lives in `hvar.imresize` and is for benchmark LR images only.
"""

import math

import torch

CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic coefficient


def _cubic(t: float) -> float:
    t = abs(t)
    a = CUBIC_A
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def bicubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of 1-D bicubic resampling, align_corners=False, border replicated."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = n_in / n_out
    for i in range(n_out):
        x = (i + 0.5) * scale - 0.5
        x0 = math.floor(x)
        t = x - x0
        for k in range(-1, 3):
            j = min(max(x0 + k, 0), n_in - 1)  # PyTorch clamps the tap index (replicate border)
            m[i, j] += _cubic(t - k)
    return m.float()


def area_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of adaptive average pooling (= F.interpolate(mode='area'))."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)  # ceil
        m[i, start:end] = 1.0 / (end - start)
    return m.float()


def resize_with(x_BChw: torch.Tensor, m_oh: torch.Tensor, m_ow: torch.Tensor) -> torch.Tensor:
    """Separable resize: rows with m_oh (out_h x h), columns with m_ow (out_w x w)."""
    return m_oh @ x_BChw @ m_ow.transpose(0, 1)


def area_half(x_BChw: torch.Tensor) -> torch.Tensor:
    """Exact 2x2 average. HIT builds its image pyramid only with this, so the pyramid of a halved image
    is bit-for-bit the tail of the full image's pyramid (the token-overlap property relies on it)."""
    return torch.nn.functional.avg_pool2d(x_BChw, 2)


def area_down(x_BChw: torch.Tensor, factor: int) -> torch.Tensor:
    """Downsample by a power of 2 as repeated `area_half`, never in one step (same bits as HIT uses)."""
    if factor < 1 or factor & (factor - 1):
        raise ValueError(f"factor must be a power of 2, got {factor}")
    while factor > 1:
        x_BChw = area_half(x_BChw)
        factor //= 2
    return x_BChw
