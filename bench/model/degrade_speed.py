"""Cost of making one training LR on the fly: the realistic recipe against plain MATLAB bicubic.

    model/.venv/bin/python bench/model/degrade_speed.py [--crop 256] [--runs 50]

Training draws a fresh degradation per crop, so this must stay small next to a training step.
"""

import argparse
import time

import numpy as np

from hvar.degrade import bicubic_lr, degrade


def per_call_ms(fn, runs: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (args.crop, args.crop, 3), dtype=np.uint8)
    bicubic = per_call_ms(lambda: bicubic_lr(hr, args.scale), args.runs)
    realistic = per_call_ms(lambda: degrade(hr, args.scale, rng), args.runs)
    print(f"| LR maker ({args.crop}px crop, x{args.scale}) | ms per crop | vs bicubic |")
    print("| --- | --- | --- |")
    print(f"| bicubic (MATLAB) | {bicubic:.1f} | 1.00 |")
    print(f"| realistic (second order) | {realistic:.1f} | {realistic / bicubic:.2f} |")


if __name__ == "__main__":
    main()
