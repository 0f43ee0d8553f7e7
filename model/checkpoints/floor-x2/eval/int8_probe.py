"""Would an int8 graph make the served floor faster on a CPU without losing the picture? The served file
quantized after training by onnxruntime (static, QDQ, weights int8 per channel, activations uint8,
calibrated with MinMax on 24 crops of 12 training photos), three ways: every node; the first and last
convolutions of both networks and the heads kept in float ("edges"); the upscaler's body alone. Speed:
one batch of 4 tiles of 368x320 at 2 threads, float and int8, in one process; quality: `hvar.eval_sr`
through the runner's tiling on Set5 and Set14, clean and realistic LR, x4, at clean-up 1.

    cd model && .venv/bin/python checkpoints/floor-x2/eval/int8_probe.py \
        > checkpoints/floor-x2/eval/int8-probe.md

2 minutes on 2 cores. Result (int8-probe.md): int8 runs the graph 1.1-2.5x faster on this CPU (AVX-512
VNNI) and costs 1.2-4.2 dB on clean x4, far outside the issue's 0.5 dB: SPAN's sigmoid attention and
residual sums do not survive 8-bit activations. Quantizing would need training for it (QAT). Not
served.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from hvar.paths import list_images

SERVED = Path("../gpu-runner/models/hvar")
TRAIN = Path("../../shared/datasets/train")
# The first convolution and the last of each network's body, and the heads.
EDGES = [
    "/conv_1/Conv",
    "/conv_cat/Conv",
    "/x1/Conv",
    "/conv_1_1/Conv",
    "/conv_cat_1/Conv",
    "/x2/Conv",
    "/x4/Conv",
]


def calibration_tiles() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    tiles = []
    for path in list_images(TRAIN)[::5][:12]:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255  # H W 3
        for _ in range(2):
            y, x = rng.integers(0, image.shape[0] - 128), rng.integers(0, image.shape[1] - 128)
            tiles.append(image[y : y + 128, x : x + 128].transpose(2, 0, 1)[None])  # 1 3 128 128
    return tiles


class Tiles(CalibrationDataReader):
    def __init__(self, tiles: list[np.ndarray]):
        self.tiles = iter(tiles)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tile = next(self.tiles, None)
        return None if tile is None else {"lr": tile, "cleanup": np.array([1.0], np.float32)}


def seconds_per_batch(model: Path) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    lr = np.random.default_rng(1).random((4, 3, 320, 368), dtype=np.float32)  # N 3 H W
    feeds = {"lr": lr, "cleanup": np.ones(1, np.float32)}
    session.run(None, feeds)
    started = time.perf_counter()
    for _ in range(3):
        session.run(None, feeds)
    return (time.perf_counter() - started) / 3


def evaluate(folder: Path) -> dict[tuple[str, str], float]:
    report = folder / "eval.json"
    protocol = "--dataset Set5 Set14 --scale 4 --degradation bicubic realistic --cleanup 1".split()
    command = [sys.executable, "-m", "hvar.eval_sr", "--run", str(folder), *protocol, "--json", str(report)]
    subprocess.run(command, check=True, capture_output=True)
    results = json.loads(report.read_text())["results"]
    return {(r["dataset"], r["degradation"]): r["sr"]["psnr"] for r in results}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="int8-probe-"))
    prepared = work / "prepared.onnx"
    quant_pre_process(str(SERVED / "model.onnx"), str(prepared), skip_symbolic_shape=True)
    names = [node.name for node in onnx.load(str(prepared)).graph.node]
    upscaler = names.index("/conv_1_1/Conv")
    variants = {
        "float (served)": None,
        "int8, every node": [],
        "int8, edges in float": EDGES,
        "int8, upscaler body alone": names[:upscaler] + ["/conv_1_1/Conv", "/x2/Conv", "/x4/Conv"],
    }
    tiles = calibration_tiles()
    rows = []
    for label, excluded in variants.items():
        folder = work / label.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
        folder.mkdir()
        shutil.copy(SERVED / "manifest.json", folder)
        if excluded is None:
            shutil.copy(SERVED / "model.onnx", folder)
        else:
            quantize_static(
                str(prepared),
                str(folder / "model.onnx"),
                Tiles(tiles),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
            )
        print(f"int8 probe: {label}", file=sys.stderr)
        rows.append((label, seconds_per_batch(folder / "model.onnx"), evaluate(folder)))
    base_seconds, base = rows[0][1], rows[0][2]
    columns = "Set5 clean x4 | Set14 clean x4 | Set5 realistic x4 | Set14 realistic x4"
    print(f"| graph | s per batch of 4 (368x320) | speed against float | {columns} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    keys = [("Set5", "bicubic"), ("Set14", "bicubic"), ("Set5", "realistic"), ("Set14", "realistic")]
    for label, seconds, psnr in rows:
        cells = " | ".join(f"{psnr[k]:.2f} ({psnr[k] - base[k]:+.2f})" for k in keys)
        print(f"| {label} | {seconds:.2f} | {base_seconds / seconds:.2f}x | {cells} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
