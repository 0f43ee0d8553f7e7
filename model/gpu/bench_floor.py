"""The shipped model on one GPU: tiles per second against batch size (issue 19, item 4).

The runner's own benchmark (`npm run bench:runner -- --device cuda`) needs onnxruntime-node with its CUDA
build; a lent GPU machine has Python, PyTorch and onnxruntime instead, and no internet. This measures
the same graph there, the way the runner feeds it (N tiles of the served side, float32 in [0, 1]):

1. PyTorch on the GPU, the shipped model's PyTorch weights (`--floor`), float32 and float16 (autocast);
2. onnxruntime on the shipped `model.onnx` (`--model`), with its CUDA provider when this onnxruntime has
   one (inputs and outputs through host memory, as the runner's are), else on the CPU;
3. the paper's own figure (H-VAR: 0.25 s per 128 -> 512 image): one 128 x 128 image to x4, whole.

From model/, after `bash gpu/train_floor.sh` in the same device call (the model travels with the tree):
    python gpu/bench_floor.py --json "$OUT/bench-floor.json"
A CPU run of the same steps (a minute): python gpu/bench_floor.py --batches 1,2 --seconds 1 --device cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # model/, for hvar when run as a script
from hvar.floor import load_floor  # noqa: E402


def timed(run, seconds: float, sync=lambda: None) -> list[float]:
    """Wall seconds of each call of `run` for about `seconds`, after three warm-up calls."""
    for _ in range(3):
        run()
    sync()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def row(engine: str, batch: int, times: list[float], tile: int, overlap: int) -> dict:
    per_batch = statistics.median(times)
    tiles_s = batch / per_batch
    out_mp = tiles_s * ((tile - overlap) * 4) ** 2 / 1e6  # x4 output each tile adds once tiles overlap
    return {"engine": engine, "batch": batch, "ms_per_batch": 1e3 * per_batch, "tiles_per_s": tiles_s,
            "x4_output_mp_per_s": out_mp}  # fmt: skip


def torch_rows(args, tile: int, overlap: int, device: torch.device) -> list[dict]:
    model = load_floor(args.floor).to(device).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    for half in (False, True) if device.type == "cuda" else (False,):
        for batch in args.batches:
            lr = torch.rand(batch, 3, tile, tile, device=device)

            @torch.inference_mode()
            def run(lr=lr, half=half):
                with torch.autocast(device.type, dtype=torch.float16, enabled=half):
                    model(lr)

            engine = f"PyTorch {device.type} {'fp16' if half else 'fp32'}"
            rows.append(row(engine, batch, timed(run, args.seconds, sync), tile, overlap))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def onnx_rows(args, tile: int, overlap: int, device: torch.device) -> list[dict]:
    import onnxruntime as ort

    cuda = device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(args.model / "model.onnx"), providers=providers)
    engine = f"onnxruntime {'CUDA' if cuda else 'CPU'} {ort.__version__}"
    rows = []
    for batch in args.batches:
        lr = np.random.default_rng(0).random((batch, 3, tile, tile), dtype=np.float32)
        times = timed(lambda lr=lr: session.run(None, {"lr": lr}), args.seconds)
        rows.append(row(engine, batch, times, tile, overlap))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def paper_figure(args, device: torch.device) -> dict:
    """Seconds for one 128 x 128 image to 512 x 512, whole (the paper times its 128 -> 512 images)."""
    model = load_floor(args.floor).to(device).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    lr = torch.rand(1, 3, 128, 128, device=device)
    times = timed(torch.inference_mode()(lambda: model(lr)), args.seconds, sync)
    engine = f"PyTorch {device.type} fp32"
    return {"engine": engine, "image": "128x128 -> 512x512", "seconds": statistics.median(times)}


def batch_sizes(text: str) -> list[int]:
    """`--batches`: "1,8,16" -> [1, 8, 16]; argparse reports what it raises as a usage error."""
    sizes = [int(b) for b in text.split(",") if b.strip()]
    if not sizes or min(sizes) < 1:
        raise ValueError(text)
    return sizes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("../gpu-runner/models/hvar"), help="a runner model")
    ap.add_argument("--floor", type=Path, default=Path("checkpoints/floor-cascade-mild"),
                    help="the same model's PyTorch weights (hvar.floor run folder)")  # fmt: skip
    ap.add_argument("--batches", type=batch_sizes, default="1,8,16,32,64", help="comma-separated, each >= 1")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per point")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--json", type=Path, help="write the readings here too")
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        ap.error("--seconds must be > 0")
    if not (args.model / "manifest.json").is_file() or not (args.model / "model.onnx").is_file():
        ap.error(f"--model: {args.model} is not a runner model folder (manifest.json, model.onnx)")
    if not (args.floor / "floor.json").is_file():
        ap.error(f"--floor: {args.floor} is not an hvar.floor run folder (floor.json)")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    manifest = json.loads((args.model / "manifest.json").read_text())
    tile, overlap = manifest["tile"], manifest["overlap"]
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"{manifest['id']} {manifest['version']}, tile {tile}, overlap {overlap}, on {name}", flush=True)

    rows = torch_rows(args, tile, overlap, device) + onnx_rows(args, tile, overlap, device)
    paper = paper_figure(args, device)
    print("\n| engine | batch | ms per batch | tiles/s | x4 output MP/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['engine']} | {r['batch']} | {r['ms_per_batch']:.1f} | {r['tiles_per_s']:.1f} | "
              f"{r['x4_output_mp_per_s']:.1f} |")  # fmt: skip
    ms = paper["seconds"] * 1e3
    print(f"\n{paper['image']}, whole, {paper['engine']}: {ms:.1f} ms (the paper: 250 ms)")
    if args.json:
        readings = {"model": f"{manifest['id']} {manifest['version']}", "device": name, "tile": tile,
                    "overlap": overlap, "rows": rows, "paper_figure": paper}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(readings, indent=2))


if __name__ == "__main__":
    main()
