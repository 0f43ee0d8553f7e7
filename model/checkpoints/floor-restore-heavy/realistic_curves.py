"""The realistic-LR curves of every floor run in 2.5.0's lineage and of the attempts beside it: Set5's gain
over bicubic at x2 and x4 (train_floor's checks, which agree with the ONNX evaluation within 0.01 dB at
step 0) against the pairs each run had seen since SPAN, with the issue's target (+1.5 dB) and the
per-image oracle linear filter (`ceiling_probe.py`). From model/:

    .venv/bin/python checkpoints/floor-restore-heavy/realistic_curves.py
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
CHECKPOINTS = HERE.parent
ORACLE = {2: 1.10, 4: 0.90}  # Set5 realistic, ceiling-probe.md
TARGET = 1.5
# (folder, pairs per step, the run it started from): each batch holds --batch-size x4 pairs and as many x2
LINEAGE = [
    ("floor-gpu", 128, None),
    ("floor-cascade-mild", 48, "floor-gpu"),  # floor-cascade (0 steps) put its restorer in front of SPAN
    ("floor-cascade-light", 48, "floor-cascade-mild"),
    ("floor-cascade-wide", 48, "floor-cascade-mild"),
    ("floor-cascade-restore", 48, "floor-cascade-mild"),
    ("floor-restore-hiq", 48, "floor-cascade-restore"),
    ("floor-restore-texture", 48, "floor-cascade-restore"),
    ("floor-restore-heavy", 48, "floor-restore-texture"),
    ("floor-restore-context", 48, "floor-restore-heavy"),
]
SHIPPED = {
    "floor-gpu",
    "floor-cascade-mild",
    "floor-cascade-restore",
    "floor-restore-texture",
    "floor-restore-heavy",
}


def checks(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if "psnr_real_x4" in r]


def main() -> None:
    """Left: the GPU run from SPAN; right: each CPU run after it, from the weights it started from."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharey="row", gridspec_kw={"width_ratios": [1, 1.4]})
    for name, per_step, parent in LINEAGE:
        rows = checks(CHECKPOINTS / name)
        kpairs = [r["step"] * per_step / 1000 for r in rows]
        col = 0 if parent is None else 1
        shipped = name in SHIPPED
        for row, s in enumerate((2, 4)):
            gain = [r[f"psnr_real_x{s}"] - r[f"bicubic_real_x{s}"] for r in rows]
            axes[row, col].plot(kpairs, gain, "-" if shipped else "--", marker=".", label=name)
    for row, s in enumerate((2, 4)):
        for col, what in enumerate(
            ("one H200, 9.4 min, batch 64 + 64", "2 CPU cores, 35-93 min each, batch 24 + 24")
        ):
            ax = axes[row, col]
            ax.axhline(TARGET, color="k", lw=1)
            ax.text(0, TARGET + 0.04, "target +1.5 dB", fontsize=8)
            ax.axhline(ORACLE[s], color="grey", lw=1, ls=":")
            ax.text(
                0,
                ORACLE[s] + 0.04,
                "per-image oracle linear filter (ceiling-probe.md)",
                fontsize=8,
                color="grey",
            )
            ax.set_title(f"Set5 realistic x{s}, gain over bicubic (dB): {what}", fontsize=9)
            ax.set_xlabel(
                "thousands of training pairs" + (" since SPAN" if col == 0 else " since the run's start")
            )
            ax.grid(alpha=0.3)
            ax.set_ylim(-0.9, 1.7)
    axes[0, 1].legend(fontsize=7, loc="lower right", title="solid: 2.5.0's lineage", title_fontsize=7)
    fig.tight_layout()
    out = HERE / "realistic-curves.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
