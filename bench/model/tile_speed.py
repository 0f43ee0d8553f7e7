"""Time per LR tile of an H-VAR export: onnxruntime (the runner's runtime) next to PyTorch, same run.

    # export hvar-base first (docs/model-and-training.md), then:
    model/.venv/bin/python bench/model/tile_speed.py --model gpu-runner/models/hvar-base \\
        --run model/checkpoints/hvar-base --threads 2

Both compute one whole pass (condition, every scale with its cache, x1/x2/x4 decoded) on batches of
random LR tiles (the work does not depend on the content) with greedy decoding; each row is the median
of --repeats timed runs after one warm-up run. Run it on an otherwise idle machine. Prints a markdown
table; the ratio is PyTorch's time over onnxruntime's.
"""

import argparse
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from hvar.export import ort_session
from hvar.sr import load_hvar


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, first-run kernel choices
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def run_torch(model, args_t) -> None:
    model(*args_t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="exported model folder (model.onnx)")
    ap.add_argument("--run", type=Path, required=True, help="the PyTorch run folder it was exported from")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.nnpack.set_flags(False)

    model = load_hvar(args.run)
    start = time.perf_counter()
    sess = ort_session(args.model / "model.onnx", args.threads)
    load_s = time.perf_counter() - start
    T, L = model.cfg.tokenizer.tile, model.cfg.tokenizer.num_tokens
    rng = np.random.default_rng(0)
    print(f"onnxruntime session created in {load_s:.1f} s; {args.threads} threads; tile {T} px, {L} tokens")
    print()
    print("| batch | onnxruntime ms/tile | PyTorch ms/tile | PyTorch / onnxruntime |")
    print("| --- | --- | --- | --- |")
    for n in args.batches:
        lr = rng.random((n, 3, T, T), dtype=np.float32)
        noise = rng.random((n, L), dtype=np.float32)
        feeds = {"lr": lr, "noise": noise, "temperature": np.zeros(1, np.float32)}
        args_t = (torch.from_numpy(lr), torch.from_numpy(noise), torch.zeros(1))
        ort_s = median_seconds(partial(sess.run, None, feeds), args.repeats) / n
        torch_s = median_seconds(partial(run_torch, model, args_t), args.repeats) / n
        print(f"| {n} | {ort_s * 1e3:.0f} | {torch_s * 1e3:.0f} | {torch_s / ort_s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
