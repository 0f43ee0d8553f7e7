"""Self-ensemble probe: what averaging the shipped floor over flips and transposes buys on each row.

The floor is a convolutional network, so flipping or transposing its input and undoing it on the
outputs gives another estimate of the same image; averaging several is the classic test-time
"self-ensemble" (Lim et al. 2017, EDSR+). It costs one model pass per member. This scores the
exported ONNX file through the runner's tiling (`hvar.eval_sr.upscale`) with 1, 2 (identity and a
mirror) and 8 (the dihedral group) members, on Set5 / Set14, x2 / x4, bicubic and realistic LR, so
that the gain can be weighed against the time it multiplies.

    .venv/bin/python checkpoints/floor-restore-dense/ensemble_probe.py \\
        --model ../gpu-runner/models/hvar --json checkpoints/floor-restore-dense/ensemble-probe.json \\
        > checkpoints/floor-restore-dense/ensemble-probe.md
    # the table again from the saved scores, without running the model:
    .venv/bin/python checkpoints/floor-restore-dense/ensemble_probe.py --report \\
        --json checkpoints/floor-restore-dense/ensemble-probe.json
"""

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

from hvar.eval_sr import OnnxModel, evaluate

# (transpose, mirror left-right, mirror top-bottom); the first `n` members of this order are used.
DIHEDRAL = [(t, h, v) for t, h, v in itertools.product((False, True), repeat=3)]
DIHEDRAL.sort(key=lambda m: (m != (False, False, False), m != (False, True, False)))  # identity, mirror, rest


def apply(x: torch.Tensor, member: tuple[bool, bool, bool]) -> torch.Tensor:
    t, h, v = member
    x = x.transpose(-1, -2) if t else x
    x = x.flip(-1) if h else x
    return x.flip(-2) if v else x


def undo(x: torch.Tensor, member: tuple[bool, bool, bool]) -> torch.Tensor:
    t, h, v = member
    x = x.flip(-2) if v else x
    x = x.flip(-1) if h else x
    return x.transpose(-1, -2) if t else x


class Ensemble:
    """A model of the runner's contract whose outputs are the mean over `members` (square tiles)."""

    def __init__(self, model: OnnxModel, members: list[tuple[bool, bool, bool]]):
        self.model, self.members = model, members
        self.tile, self.tokens, self.overlap = model.tile, model.tokens, model.overlap

    def eval(self) -> "Ensemble":
        return self

    def __call__(self, lr_N3TT, noise_NL, temperature_1):
        total = None
        for m in self.members:
            outs = [undo(o, m) for o in self.model(apply(lr_N3TT, m), noise_NL, temperature_1)[:3]]
            total = outs if total is None else [a + b for a, b in zip(total, outs, strict=True)]
        return [o / len(self.members) for o in total]


def cell(score: dict, base: dict | None = None) -> str:
    """PSNR / SSIM / NIQE of one row, with the PSNR gain over `base` when given."""
    gain = "" if base is None else f" ({score['psnr'] - base['psnr']:+.2f})"
    return f"{score['psnr']:.2f}{gain} / {score['ssim']:.4f} / {score['niqe']:.2f}"


def report(probe: dict) -> str:
    """The probe's JSON as a markdown table: one row per (set, scale, LR), one column per member count."""
    runs = probe["members"]
    counts = list(runs)
    first = runs[counts[0]]["results"]
    lines = [
        f"# Self-ensemble of `{probe['model']}` (ONNX through the runner's tiling)\n",
        "PSNR-Y dB (gain over one pass) / SSIM-Y / NIQE.\n",
        "| set | scale | LR | bicubic | "
        + " | ".join(f"{n} member{'s' * (n != '1')}" for n in counts)
        + " |",
        "| --- | --- | --- | --- |" + " --- |" * len(counts),
    ]
    for i, row in enumerate(first):
        cells = [cell(row["sr"])] + [cell(runs[n]["results"][i]["sr"], row["sr"]) for n in counts[1:]]
        head = f"| {row['dataset']} | x{row['scale']} | {row['degradation']} | {cell(row['bicubic'])} | "
        lines.append(head + " | ".join(cells) + " |")
    times = ", ".join(f"{n}: {runs[n]['seconds']:.0f} s" for n in counts)
    lines.append(
        f"\nSeconds per column, the whole evaluation with NIQE: {times} (on a CPU shared with training)."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="an exported model folder")
    ap.add_argument("--members", type=int, nargs="+", default=[1, 2, 8])
    ap.add_argument("--dataset", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--degradation", nargs="+", default=["bicubic", "realistic"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True, help="where the scores go (read back with --report)")
    ap.add_argument("--report", action="store_true", help="print the table of an earlier probe's --json only")
    args = ap.parse_args()
    if not args.report:
        if args.model is None:
            ap.error("--model is required unless --report")
        model = OnnxModel(args.model, args.threads)
        runs = {}
        for n in args.members:
            start = time.perf_counter()
            ev = evaluate(Ensemble(model, DIHEDRAL[:n]), tuple(args.dataset), (2, 4), tuple(args.degradation),
                          progress=False)  # fmt: skip
            runs[str(n)] = {"seconds": time.perf_counter() - start, "results": ev["results"]}
            print(f"{n} members: {runs[str(n)]['seconds']:.0f} s", file=sys.stderr)
        args.json.write_text(json.dumps({"model": str(args.model), "members": runs}, indent=1))
    print(report(json.loads(args.json.read_text())))


if __name__ == "__main__":
    main()
