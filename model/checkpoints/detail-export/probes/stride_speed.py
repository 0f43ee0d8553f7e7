"""What overlapping sub-tiles cost: exported detail paths timed side by side in onnxruntime (2 threads,
Set5 tiles, sampled), each round in turn, the best of ROUNDS.

    cd model && HVAR_DATA_ROOT=../../shared/datasets .venv/bin/python \\
        checkpoints/detail-export/probes/stride_speed.py runs/export-s24/hvar-detail-s32 \\
        runs/export-s24/hvar-detail-s24   # `hvar.export ... --decode 4 [--stride 24]`, top 64
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hvar.export import photo_tiles

ROUNDS = 3
folders = [Path(arg) for arg in sys.argv[1:]]
options = ort.SessionOptions()
options.intra_op_num_threads, options.enable_mem_pattern = 2, False
sessions = {f.name: ort.InferenceSession(str(f / "model.onnx"), options) for f in folders}
feeds = {}
for folder in folders:
    manifest = json.loads((folder / "manifest.json").read_text())
    lr = photo_tiles(manifest["tile"], 5)
    noise = np.random.default_rng(0).random((len(lr), manifest["tokens"]), dtype=np.float32)
    feeds[folder.name] = {"lr": lr, "noise": noise, "temperature": np.ones(1, np.float32)}
times = {name: [] for name in sessions}
for name, session in sessions.items():
    session.run(None, feeds[name])  # warm-up
for _ in range(ROUNDS):
    for name, session in sessions.items():
        start = time.perf_counter()
        session.run(None, feeds[name])
        times[name].append(time.perf_counter() - start)
first = min(times[folders[0].name])
for name, t in times.items():
    print(f"{name}: best {min(t):.2f} s per 5 tiles ({min(t) / first:.2f}x the first)")
