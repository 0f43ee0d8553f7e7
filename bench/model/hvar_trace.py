"""Does H-VAR inference trace to ONNX, and does onnxruntime agree? (A check for the export issue.)

    model/.venv/bin/python bench/model/hvar_trace.py [--preset tiny] [--run RUN_FOLDER]

Exports `HVAR.forward(lr, noise, temperature) -> (x1, x2, x4)` (the model contract: the whole
next-scale loop unrolled with its key/value cache) with the TorchScript exporter, then compares
onnxruntime with PyTorch for greedy and sampled decoding and a batch size other than the traced one.
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from hvar.config import get_config
from hvar.sr import HVAR, load_hvar


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--run", help="a trained run folder instead of a random model")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = load_hvar(args.run) if args.run else HVAR(get_config(args.preset)).eval()
    T, L = model.cfg.tokenizer.tile, model.cfg.tokenizer.num_tokens
    inputs = (torch.rand(2, 3, T, T), torch.rand(2, L), torch.tensor([0.0]))
    path = Path(tempfile.mkdtemp()) / "hvar.onnx"
    start = time.perf_counter()
    torch.onnx.export(
        model, inputs, str(path), input_names=["lr", "noise", "temperature"], output_names=["x1", "x2", "x4"],
        dynamic_axes={"lr": {0: "N"}, "noise": {0: "N"}}, opset_version=args.opset, dynamo=False,
    )  # fmt: skip
    print(f"exported {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    print("| N | temperature | x1 PSNR | x2 PSNR | x4 PSNR (onnxruntime vs PyTorch, dB) |")
    print("| --- | --- | --- | --- | --- |")
    for n, t in ((2, 0.0), (2, 1.0), (3, 0.0)):
        lr, noise, temp = torch.rand(n, 3, T, T), torch.rand(n, L), torch.tensor([t])
        with torch.no_grad():
            ref = model(lr, noise, temp)
        out = sess.run(None, {"lr": lr.numpy(), "noise": noise.numpy(), "temperature": temp.numpy()})
        cells = " | ".join(f"{psnr(r.numpy(), o):.1f}" for r, o in zip(ref, out, strict=True))
        print(f"| {n} | {t} | {cells} |")


if __name__ == "__main__":
    main()
