"""Low-resolution synthesis: the bicubic benchmark convention and a Real-ESRGAN-style realistic recipe,
chosen by name through `make_lr` (the evaluation, the training crops and the pair cache all use it).

`degrade` follows Real-ESRGAN's second-order pipeline (Wang et al. 2021, `realesrgan_model.py`):
  blur -> random resize -> Gaussian/Poisson noise -> JPEG, twice (second blur skipped with 1-p),
  then resize to the LR size and [sinc -> JPEG] or [JPEG -> sinc] with equal odds.
Differences from the reference, on purpose: JPEG is a real Pillow encode (4:2:0) instead of DiffJPEG,
and everything is numpy on one image, so the training loader can run it per crop on CPU workers.
Randomness comes only from the `rng` argument, so a seed fixes the whole degradation.
"""

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from hvar.imresize import imresize_uint8

KERNEL_NAMES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
KERNEL_SIZES = tuple(range(7, 22, 2))  # odd sizes 7..21, as Real-ESRGAN's kernel_range
RESIZE_MODES = ("area", "bilinear", "bicubic")
DEGRADATIONS = ("bicubic", "realistic")  # how an LR image is made from its HR image: `make_lr`
# The evaluation also asks for "jpeg<q>": the benchmark LR saved as a JPEG of quality q, and "noise<s>":
# the benchmark LR with Gaussian noise of s levels in each channel, seeded (`make_lr`).
JPEG_DEGRADATION = re.compile(r"jpeg(\d{1,2}|100)")
NOISE_DEGRADATION = re.compile(r"noise([1-9]\d?)")


@dataclass
class OrderConfig:
    """Parameter ranges of one degradation order (defaults: Real-ESRGAN x4plus, first order)."""

    kernel_list: tuple[str, ...] = KERNEL_NAMES
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1  # probability the blur is a sinc (ringing/overshoot) instead
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape
    betap_range: tuple[float, float] = (1.0, 2.0)  # plateau shape
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_range: tuple[float, float] = (1.0, 30.0)  # sigma on the 0..255 scale
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


def _second_order() -> OrderConfig:
    return OrderConfig(
        blur_sigma=(0.2, 1.5),
        resize_prob=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_range=(1.0, 25.0),
        poisson_scale_range=(0.05, 2.5),
    )


@dataclass
class DegradeConfig:
    """Real-ESRGAN's defaults for both orders and the final stage."""

    first: OrderConfig = field(default_factory=OrderConfig)
    second: OrderConfig = field(default_factory=_second_order)
    second_blur_prob: float = 0.8
    final_sinc_prob: float = 0.8
    kernel_sizes: tuple[int, ...] = KERNEL_SIZES


# ---------------------------------------------------------------------------------------------- bicubic


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so H and W are multiples of scale (the benchmark convention)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """Benchmark LR: modcrop, then MATLAB bicubic downscale by 1/scale. uint8 in, uint8 out."""
    return imresize_uint8(modcrop(hr, scale), 1 / scale)


# ---------------------------------------------------------------------------------------------- kernels


def _grid(size: int) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)  # (size, size, 2)


def _quad_form(size: int, sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x over the grid, Sigma = R diag(sx^2, sy^2) R^T."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    inv_sigma = np.linalg.inv(rot @ np.diag([sig_x**2, sig_y**2]) @ rot.T)
    g = _grid(size)
    return np.einsum("hwi,ij,hwj->hw", g, inv_sigma, g)


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel J1 without scipy: J1(x) = 1/(2pi) * integral over a period of cos(t - x sin t).

    The integrand is smooth and periodic, so the trapezoid rule converges exponentially; 128 nodes
    are exact to ~1e-15 for |x| < 60 (sinc kernels need |x| <= pi * 10 * sqrt(2) ~ 44).
    """
    t = np.linspace(-np.pi, np.pi, 128, endpoint=False)
    x = np.asarray(x, dtype=np.float64)
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def sinc_kernel(size: int, omega_c: float) -> np.ndarray:
    """2-D circular low-pass (jinc) kernel with cutoff omega_c, normalised to sum 1."""
    r = np.linalg.norm(_grid(size), axis=-1)
    r_safe = np.where(r == 0, 1.0, r)
    k = omega_c * bessel_j1(omega_c * r_safe) / (2 * np.pi * r_safe)
    k[r == 0] = omega_c**2 / (4 * np.pi)  # the limit at the centre
    return k / k.sum()


def _beta(rng: np.random.Generator, lo: float, hi: float) -> float:
    # Half the time below 1 (heavier tails), half above (flatter top), as Real-ESRGAN samples it.
    return rng.uniform(lo, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, hi)


def random_blur_kernel(rng: np.random.Generator, size: int, cfg: OrderConfig) -> np.ndarray:
    """One of the iso/aniso Gaussian, generalized Gaussian or plateau kernels, or a sinc; sums to 1."""
    if rng.uniform() < cfg.sinc_prob:
        # Small kernels cannot hold a low cutoff without truncation artefacts.
        lo = np.pi / 3 if size < 13 else np.pi / 5
        return sinc_kernel(size, rng.uniform(lo, np.pi))
    name = cfg.kernel_list[rng.choice(len(cfg.kernel_list), p=np.asarray(cfg.kernel_prob))]
    sig_x = rng.uniform(*cfg.blur_sigma)
    if name.endswith("aniso"):
        sig_y, theta = rng.uniform(*cfg.blur_sigma), rng.uniform(-np.pi, np.pi)
    else:
        sig_y, theta = sig_x, 0.0
    q = _quad_form(size, sig_x, sig_y, theta)
    if name.startswith("generalized"):
        k = np.exp(-0.5 * q ** _beta(rng, *cfg.betag_range))
    elif name.startswith("plateau"):
        k = 1.0 / (q ** _beta(rng, *cfg.betap_range) + 1.0)
    else:
        k = np.exp(-0.5 * q)
    return k / k.sum()


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n."""
    best = 2 ** math.ceil(math.log2(n))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 * 2 ** max(0, math.ceil(math.log2(n / p35)))
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def filter2d(img_HWC: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size filtering with reflect padding (BasicSR filter2D), via FFT: kernels are up to 21x21.

    The kernels here are point-symmetric, so convolution equals the reference's correlation.
    """
    k = kernel.shape[0]
    p = k // 2
    h, w = img_HWC.shape[:2]
    x = np.pad(img_HWC, ((p, p), (p, p), (0, 0)), mode="reflect")
    s = tuple(_fast_len(n) for n in x.shape[:2])  # zero-extend to a 5-smooth length: pocketfft is fast there
    spec = np.fft.rfft2(x, s=s, axes=(0, 1)) * np.fft.rfft2(kernel.astype(x.dtype), s=s)[..., None]
    full = np.fft.irfft2(spec, s=s, axes=(0, 1))
    # Circular result at [k-1:] never wraps (the index minus any tap stays >= 0): the 'valid' part.
    return full[k - 1 : k - 1 + h, k - 1 : k - 1 + w].astype(img_HWC.dtype)


# ---------------------------------------------------------------------------------------------- resize


def _taps(in_len: int, out_len: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(index, weight) taps per output pixel, PyTorch F.interpolate semantics (align_corners=False)."""
    ratio = in_len / out_len
    dst = np.arange(out_len, dtype=np.float64)
    if mode == "area":  # adaptive average pooling
        i = np.arange(out_len, dtype=np.int64)  # integer bounds, as PyTorch computes them
        start, end = (i * in_len) // out_len, -((-(i + 1) * in_len) // out_len)
        idx = start[:, None] + np.arange(int((end - start).max()))[None, :]
        w = (idx < end[:, None]) / (end - start)[:, None]
    elif mode == "bilinear":
        src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
        i0 = np.floor(src)
        t = (src - i0)[:, None]
        idx = i0[:, None] + np.arange(2)[None, :]
        w = np.concatenate([1 - t, t], axis=1)
    elif mode == "bicubic":  # Keys a=-0.75, no antialias: the aliasing is part of the degradation
        src = (dst + 0.5) * ratio - 0.5
        i0 = np.floor(src)
        d = np.abs((src - i0)[:, None] - np.arange(-1, 3)[None, :])
        a = -0.75
        w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)
        idx = i0[:, None] + np.arange(-1, 3)[None, :]
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    return np.clip(idx, 0, in_len - 1).astype(np.int64), w.astype(np.float32)


def resize(img_HWC: np.ndarray, out_hw: tuple[int, int], mode: str) -> np.ndarray:
    """Resize like torch F.interpolate(mode=...), as gathers of a few taps per axis (fast on CPU)."""
    x = img_HWC
    for dim in (0, 1):
        if out_hw[dim] == x.shape[dim]:
            continue
        idx, w = _taps(x.shape[dim], out_hw[dim], mode)
        taps = np.take(x, idx, axis=dim)  # (..., out, T, ...) with T inserted after dim
        shape = [1] * taps.ndim
        shape[dim], shape[dim + 1] = w.shape
        x = (taps * w.reshape(shape)).sum(axis=dim + 1)
    return x


# ---------------------------------------------------------------------------------------------- noise, JPEG


def add_gaussian_noise(img: np.ndarray, rng: np.random.Generator, cfg: OrderConfig) -> np.ndarray:
    sigma = rng.uniform(*cfg.noise_range) / 255.0
    h, w, c = img.shape
    gray = rng.uniform() < cfg.gray_noise_prob
    noise = rng.standard_normal((h, w, 1) if gray else (h, w, c), dtype=np.float32) * sigma
    return np.clip(img + noise, 0.0, 1.0)


def add_poisson_noise(img: np.ndarray, rng: np.random.Generator, cfg: OrderConfig) -> np.ndarray:
    """Shot noise whose photon count is the image's number of distinct levels, rounded up to 2^n."""
    scale = rng.uniform(*cfg.poisson_scale_range)
    gray = rng.uniform() < cfg.gray_noise_prob
    x = img
    if gray and img.shape[2] == 3:
        x = img @ np.array([0.299, 0.587, 0.114], dtype=img.dtype)[:, None]
    q = np.clip(np.round(x * 255.0), 0, 255).astype(np.int64)
    levels = np.count_nonzero(np.bincount(q.ravel(), minlength=256))
    vals = 2.0 ** math.ceil(math.log2(max(levels, 1)))
    xq = q.astype(np.float32) / 255.0
    noise = (rng.poisson(xq * vals) / vals).astype(np.float32) - xq
    return np.clip(img + noise * scale, 0.0, 1.0)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Real JPEG round trip through Pillow (default 4:2:0 chroma); float 0..1 in and out."""
    u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    pil = Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
    return out.reshape(img.shape)


# ---------------------------------------------------------------------------------------------- pipeline


def _order(
    x: np.ndarray,
    rng: np.random.Generator,
    o: OrderConfig,
    kernel: np.ndarray | None,
    size_for_scale: Callable[[float], tuple[int, int]],
) -> np.ndarray:
    """One order: [blur] -> random resize -> noise -> JPEG."""
    if kernel is not None:
        x = filter2d(x, kernel)
    updown = rng.choice(3, p=np.asarray(o.resize_prob))
    if updown == 0:
        s = rng.uniform(1.0, o.resize_range[1])
    elif updown == 1:
        s = rng.uniform(o.resize_range[0], 1.0)
    else:
        s = 1.0
    mode = RESIZE_MODES[rng.integers(len(RESIZE_MODES))]
    x = resize(x, size_for_scale(s), mode)
    if rng.uniform() < o.gaussian_noise_prob:
        x = add_gaussian_noise(x, rng, o)
    else:
        x = add_poisson_noise(x, rng, o)
    return jpeg(x, round(rng.uniform(*o.jpeg_range)))


def degrade(
    hr: np.ndarray, scale: int, rng: np.random.Generator, cfg: DegradeConfig | None = None
) -> np.ndarray:
    """Realistic LR of size (H // scale, W // scale) from a uint8 HR image (HxW or HxWx3), uint8 out."""
    if hr.dtype != np.uint8:
        raise TypeError(f"degrade expects uint8, got {hr.dtype}")
    cfg = cfg or DegradeConfig()
    grey = hr.ndim == 2
    x = (hr[..., None] if grey else hr).astype(np.float32) / 255.0
    h, w = x.shape[:2]
    lr_hw = (h // scale, w // scale)
    if min(lr_hw) < 1:
        raise ValueError(f"image {h}x{w} too small for x{scale}")

    # The kernels are drawn up front, as Real-ESRGAN's dataset does.
    k1 = random_blur_kernel(rng, int(rng.choice(cfg.kernel_sizes)), cfg.first)
    k2 = random_blur_kernel(rng, int(rng.choice(cfg.kernel_sizes)), cfg.second)
    blur2 = rng.uniform() < cfg.second_blur_prob
    if rng.uniform() < cfg.final_sinc_prob:
        final = sinc_kernel(int(rng.choice(cfg.kernel_sizes)), rng.uniform(np.pi / 3, np.pi))
    else:
        final = None

    def first_size(s):  # first order: relative to the HR image
        return max(1, int(h * s)), max(1, int(w * s))

    def second_size(s):  # second order: relative to the LR target, as the reference does
        return max(1, int(h / scale * s)), max(1, int(w / scale * s))

    x = _order(x, rng, cfg.first, k1, first_size)
    x = _order(x, rng, cfg.second, k2 if blur2 else None, second_size)

    # Final stage: resize to the LR size, then sinc and JPEG in either order with equal odds, as the
    # reference does: the two artefacts compound differently depending on which comes last.
    mode = RESIZE_MODES[rng.integers(len(RESIZE_MODES))]
    quality = round(rng.uniform(*cfg.second.jpeg_range))
    if rng.uniform() < 0.5:
        x = resize(x, lr_hw, mode)
        if final is not None:
            x = filter2d(x, final)
        x = jpeg(np.clip(x, 0.0, 1.0), quality)
    else:
        x = jpeg(np.clip(x, 0.0, 1.0), quality)
        x = resize(x, lr_hw, mode)
        if final is not None:
            x = filter2d(x, final)
    out = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return out[..., 0] if grey else out


def make_lr(
    hr_HWC: np.ndarray, scale: int, degradation: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """LR of a uint8 HR image: MATLAB bicubic (the benchmark; modcropped first) or the realistic recipe,
    whose randomness comes from `rng` only."""
    hr_HWC = np.ascontiguousarray(hr_HWC)  # training crops are flipped and rotated views
    if degradation == "bicubic":
        return bicubic_lr(hr_HWC, scale)
    if degradation == "realistic":
        if rng is None:
            raise ValueError("realistic degradation needs an rng")
        return degrade(hr_HWC, scale, rng)
    if (quality := jpeg_quality(degradation)) is not None:
        # the benchmark LR saved as a JPEG: how nearly every photo people send has been damaged
        return jpeg_uint8(bicubic_lr(hr_HWC, scale), quality)
    if (sigma := noise_sigma(degradation)) is not None:
        if rng is None:
            raise ValueError("noise degradation needs an rng")
        lr = bicubic_lr(hr_HWC, scale).astype(np.float32)
        lr += rng.standard_normal(lr.shape, dtype=np.float32) * sigma
        return np.clip(np.round(lr), 0, 255).astype(np.uint8)
    raise ValueError(
        f"unknown degradation {degradation!r}; choose from {DEGRADATIONS}, jpeg1..jpeg100 or noise1..noise99"
    )


def jpeg_quality(degradation: str) -> int | None:
    """The quality q of a "jpeg<q>" degradation name (1-100), None for any other name."""
    m = JPEG_DEGRADATION.fullmatch(degradation)
    return int(m[1]) if m and 1 <= int(m[1]) <= 100 else None


def noise_sigma(degradation: str) -> int | None:
    """The level s of a "noise<s>" degradation name (1-99, of 255), None for any other name."""
    m = NOISE_DEGRADATION.fullmatch(degradation)
    return int(m[1]) if m else None


def jpeg_uint8(img: np.ndarray, quality: int) -> np.ndarray:
    """`jpeg` for a uint8 image, HxWx3 or grey HxW, which comes back as it went in."""
    x = img.astype(np.float32) / 255.0
    x = jpeg(x[..., None] if img.ndim == 2 else x, quality)
    return np.round(x.reshape(img.shape) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- light


MILD = {"quality": (75, 95), "noise": (1, 5), "blur": (0.3, 0.8)}  # `light`'s faint end


def light(
    lr: np.ndarray,
    rng: np.random.Generator,
    quality: tuple[float, float] = (30, 95),
    noise: tuple[float, float] = (1, 25),
    blur: tuple[float, float] = (0.5, 1.6),
) -> np.ndarray:
    """One mild defect on an already small image (uint8 HxWx3 in and out): a JPEG round trip (`quality`),
    colour Gaussian noise (sigma `noise` levels) or a Gaussian blur (sigma `blur` px), each a third of the
    time. The realistic recipe stacks several strong defects; photos people send are more often
    lightly damaged once, and x1 must clean those too. `MILD` is the faint end, where x1 must do no harm."""
    x = lr.astype(np.float32) / 255.0
    kind = rng.integers(3)
    if kind == 0:
        x = jpeg(x, round(rng.uniform(*quality)))
    elif kind == 1:
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * rng.uniform(*noise) / 255.0
    else:
        x = gaussian_blur(x, rng.uniform(*blur))
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """An isotropic Gaussian blur of a float HxWxC image, the kernel cut at 3 sigma."""
    size = 2 * math.ceil(3 * sigma) + 1
    k = np.exp(-0.5 * _quad_form(size, sigma, sigma, 0.0))
    return filter2d(img, (k / k.sum()).astype(np.float32))


# ---------------------------------------------------------------------------------------------- one damage


class Draws:
    """A numpy Generator whose choices (every scalar draw: kernels, resizes, noise kinds and levels, JPEG
    qualities) are recorded, or replayed from a record; the noise itself (standard_normal, poisson)
    always comes from `rng`. Recording leaves `rng`'s stream as it was, so a recorded `degrade` or `light`
    gives what it gives without; replayed on another image, it damages that image the same way (with
    fresh noise). The choices never depend on the image, so a replay takes the same path.

        d = Draws(rng); lr_a = degrade(hr_a, 4, d)              # recorded
        lr_b = degrade(hr_b, 4, Draws(other_rng, d.record))      # the same damage, another photo
    """

    CHOICES = ("uniform", "choice", "integers", "random")

    def __init__(self, rng: np.random.Generator, replay: list[tuple[str, object]] | None = None):
        self.rng, self.record = rng, []
        self._replay = None if replay is None else iter(replay)

    def __getattr__(self, name: str):
        draw = getattr(self.rng, name)
        if name not in self.CHOICES:
            return draw
        if self._replay is None:

            def recorded(*args, **kwargs):
                value = draw(*args, **kwargs)
                self.record.append((name, value))
                return value

            return recorded

        def replayed(*args, **kwargs):
            kind, value = next(self._replay)
            if kind != name:
                raise RuntimeError(f"replay out of step: {kind} was recorded where {name} is asked")
            return value

        return replayed

    def exhausted(self) -> bool:
        """Whether a replay used every recorded choice (a recording is always exhausted)."""
        return self._replay is None or next(self._replay, None) is None
