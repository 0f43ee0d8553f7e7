"""The table of `finejpeg.md`: the served file on JPEGs of quality 95 and 90 at fixed strengths and at
`auto`, which reads the quality the file was saved at (hvar.noise.FINE_JPEG). Made from the JSON files of

    python -m hvar.eval_sr --run ../gpu-runner/models/hvar --dataset Set5 Set14 .data/OpenCV12 --scale 2 4 \\
        --degradation jpeg95 jpeg90 --cleanup S --threads 2 --json <this folder>/finejpeg-2.8.0-cleanupS.json

for S in 0.75 and auto (with --ladder), and jpeg95 alone at 0.25; `-first-rule` is `auto` when it gave 0.5
from quality 90 whatever the quality. Run from model/: python checkpoints/floor-x2/eval/finejpeg_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
RUNS = {"0.75": "0.75", "first rule (0.5)": "auto-first-rule", "0.25": "0.25", "auto": "auto"}


def rows() -> dict[tuple[str, str, int], dict[str, dict]]:
    table: dict[tuple[str, str, int], dict[str, dict]] = {}
    for name, suffix in RUNS.items():
        for r in json.loads((HERE / f"finejpeg-2.8.0-cleanup{suffix}.json").read_text())["results"]:
            key = (Path(r["dataset"]).name, r["degradation"], r["scale"])
            table.setdefault(key, {})[name] = r
    return table


def cell(r: dict | None) -> str:
    if r is None:
        return ""
    return f"{r['sr']['psnr']:.2f} / {r['sr']['niqe']:.2f} / {r['x1']['psnr']:.2f}"


def main() -> None:
    lines = [
        "x_s PSNR-Y / NIQE / x1 PSNR-Y against the clean LR, the served file through the runner's tiling.",
        "",
        "| set | LR | scale | bicubic | input (x1's LR) | " + " | ".join(RUNS) + " |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in RUNS) + " |",
    ]
    for (ds, deg, scale), by in rows().items():
        first = next(iter(by.values()))
        head = f"| {ds} | {deg} | x{scale} | {first['bicubic']['psnr']:.2f} | {first['input']['psnr']:.2f} |"
        lines.append(head + " | ".join(f" {cell(by.get(name))}" for name in RUNS) + " |")
    (HERE / "finejpeg.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
