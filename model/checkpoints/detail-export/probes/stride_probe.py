"""Do overlapping, blended sub-tiles change the detail path's realistic x4 PSNR and NIQE?

    cd model && HVAR_DATA_ROOT=../../shared/datasets .venv/bin/python \\
        checkpoints/detail-export/probes/stride_probe.py 32:1 24:1 32:0 24:0   # STRIDE:TEMPERATURE

The detail path of `../README.md` in PyTorch (`detail-base`, the transformer run `runs/hvar-floor-hint2`,
whose weights were not kept; top 64, x4 from the tokens), through the runner's tiling (`hvar.eval_sr`).
"""

import dataclasses
import json
import sys
import time

import torch

from hvar.detail import load_detail
from hvar.detail_sr import DetailSR
from hvar.eval_sr import evaluate
from hvar.sr import load_hvar

torch.set_num_threads(2)
detail, transformer = load_detail("checkpoints/detail-base"), load_hvar("runs/hvar-floor-hint2")
drawing = dataclasses.replace(transformer.cfg.transformer, top_k=64)
transformer.cfg = dataclasses.replace(transformer.cfg, transformer=drawing)
out = {}
for case in sys.argv[1:]:
    stride, temperature = int(case.split(":")[0]), float(case.split(":")[1])
    model = DetailSR(detail, transformer, 128, (4,), stride).eval()
    start = time.time()
    ev = evaluate(model, ("Set5", "Set14"), (4,), ("realistic",), temperature=temperature, overlap=32)
    means = {r["dataset"]: (r["sr"]["psnr"], r["sr"]["niqe"]) for r in ev["results"]}
    print(f"stride {stride} T {temperature}: {means} ({time.time() - start:.0f} s)", flush=True)
    out[case] = ev
    with open("runs/stride_probe.json", "w") as f:
        json.dump(out, f)
