"""int8 dynamic quantization (onnxruntime) of an exported model: speed on 2 threads, and how far its
outputs land from fp32's on Set5 tiles.

    cd model && HVAR_DATA_ROOT=../../shared/datasets .venv/bin/python \\
        checkpoints/detail-export/probes/int8_probe.py runs/export/hvar-detail MatMul
    ... int8_probe.py ../gpu-runner/models/hvar Conv
"""

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from hvar.export import photo_tiles, psnr01

ROUNDS = 3
folder, ops = Path(sys.argv[1]), sys.argv[2:] or ["MatMul"]
src, dst = folder / "model.onnx", Path("/tmp") / f"{folder.name}.{'-'.join(ops)}.int8.onnx"
quantize_dynamic(src, dst, op_types_to_quantize=ops, weight_type=QuantType.QInt8)
options = ort.SessionOptions()
options.intra_op_num_threads, options.enable_mem_pattern = 2, False
sessions = {k: ort.InferenceSession(str(p), options) for k, p in (("fp32", src), ("int8", dst))}
inputs = sessions["fp32"].get_inputs()
T = inputs[0].shape[-1] if isinstance(inputs[0].shape[-1], int) else 192  # fitted tiles: one size
L = inputs[1].shape[-1] if len(inputs) > 1 else 0
lr = photo_tiles(T, 5)
noise = np.random.default_rng(0).random((len(lr), L), dtype=np.float32)
feed = {"lr": lr, "noise": noise, "temperature": np.zeros(1, np.float32)}
feed = {i.name: feed[i.name] for i in inputs}
outputs, times = {}, {k: [] for k in sessions}
for session in sessions.values():
    session.run(None, feed)  # warm-up
for _ in range(ROUNDS):
    for k, session in sessions.items():
        start = time.perf_counter()
        outputs[k] = session.run(None, feed)
        times[k].append(time.perf_counter() - start)
best = {k: min(v) for k, v in times.items()}
sizes = f"{src.stat().st_size / 1e6:.1f} -> {dst.stat().st_size / 1e6:.1f} MB"
speedup = best["fp32"] / best["int8"]
print(
    f"{len(lr)} tiles of {T}: fp32 {best['fp32']:.2f} s, int8 {best['int8']:.2f} s ({speedup:.2f}x); {sizes}"
)
for name, a, b in zip(("x1", "x2", "x4"), outputs["int8"], outputs["fp32"], strict=False):
    print(f"{name}: int8 {psnr01(a, b):.1f} dB from fp32")
