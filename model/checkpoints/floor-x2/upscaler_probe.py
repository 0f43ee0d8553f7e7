"""Would a stronger pretrained upscaler make better pictures? 2.7.0's restorer with RLFN x4 behind it.

The floor is a restorer, then SPAN-ch28 as published upscaling its x1. RLFN x4 (Apache-2.0, the strongest
peer on clean input: Set5 x4 32.14 dB through the runner against SPAN's 31.72) could take SPAN's place.
This scores both cascades through the runner's tiling (192-px tiles, overlap 32), x4 on Set5 / Set14 with
clean, realistic and JPEG q75 LR, and times one batch of tiles of each through onnxruntime on the CPU.

    cd model && .venv/bin/python checkpoints/floor-x2/upscaler_probe.py \
        > checkpoints/floor-x2/upscaler-probe.md
"""

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from hvar.eval_sr import evaluate
from hvar.export import ort_session
from hvar.floor import Floor, load_floor
from hvar.rlfn import RLFN, load_rlfn

HERE = Path(__file__).parent
LRS = ("bicubic", "realistic", "jpeg75")


class Cascade(torch.nn.Module):
    """The floor's restorer, then `rlfn` (when given) instead of the floor's own upscaler for x4."""

    tile, tokens, overlap = 192, 0, 32

    def __init__(self, floor: Floor, rlfn: RLFN | None):
        super().__init__()
        self.floor, self.rlfn = floor, rlfn

    def forward(self, lr01_N3TT, noise=None, temperature=None):
        x1, x2, x4 = self.floor(lr01_N3TT)
        if self.rlfn is not None:
            x4 = (self.rlfn(x1.clamp(0, 1) * 255) / 255).clamp(0, 1)
        return x1, x2, x4


def cpu_ms_per_tile(model: torch.nn.Module, n: int = 4) -> float:
    """Process CPU ms per 192-px tile of the ONNX export (2 threads), from batches of n."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(model, (torch.rand(1, 3, 192, 192),), str(path), input_names=["lr"],
                          dynamic_axes={"lr": {0: "N"}}, opset_version=17, dynamo=False)  # fmt: skip
        session = ort_session(path, threads=2)
        x = np.random.default_rng(0).random((n, 3, 192, 192), dtype=np.float32)
        session.run(None, {"lr": x})
        start = time.process_time()
        for _ in range(3):
            session.run(None, {"lr": x})
        return (time.process_time() - start) / (3 * n) * 1000


def main() -> None:
    torch.set_num_threads(2)
    floor = load_floor(HERE)
    arms = {
        "restorer + SPAN (2.7.0)": Cascade(floor, None).eval(),
        "restorer + RLFN": Cascade(floor, load_rlfn()).eval(),
    }
    scores = {
        name: evaluate(m, ("Set5", "Set14"), (4,), LRS, progress=False)["results"] for name, m in arms.items()
    }
    print("# 2.7.0's restorer in front of SPAN-ch28 (shipped) or RLFN x4 (both as published)\n")
    print("x4, PSNR-Y dB / SSIM-Y / NIQE, through the runner's tiling; bicubic in the same run.\n")
    print("| set | LR | bicubic | " + " | ".join(arms) + " | RLFN's gain (dB) |")
    print("| --- | --- | --- |" + " --- |" * len(arms) + " ---: |")
    first, second = scores.values()
    for a, b in zip(first, second, strict=True):
        cells = [f"{r['sr']['psnr']:.2f} / {r['sr']['ssim']:.4f} / {r['sr']['niqe']:.2f}" for r in (a, b)]
        gain = b["sr"]["psnr"] - a["sr"]["psnr"]
        head = f"| {a['dataset']} | {a['degradation']} | {a['bicubic']['psnr']:.2f} | "
        print(head + " | ".join(cells) + f" | {gain:+.2f} |")
    times = {name: cpu_ms_per_tile(m) for name, m in arms.items()}
    print("\nCPU ms per 192-px tile (ONNX, 2 threads, batches of 4): "
          + ", ".join(f"{name} {ms:.0f}" for name, ms in times.items()))  # fmt: skip


if __name__ == "__main__":
    main()
