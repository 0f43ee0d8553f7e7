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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="an exported model folder")
    ap.add_argument("--members", type=int, nargs="+", default=[1, 2, 8])
    ap.add_argument("--dataset", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--degradation", nargs="+", default=["bicubic", "realistic"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()

    model = OnnxModel(args.model, args.threads)
    runs = {}
    for n in args.members:
        start = time.perf_counter()
        ev = evaluate(Ensemble(model, DIHEDRAL[:n]), tuple(args.dataset), (2, 4), tuple(args.degradation),
                      progress=False)  # fmt: skip
        runs[n] = {"seconds": time.perf_counter() - start, "results": ev["results"]}
        print(f"{n} members: {runs[n]['seconds']:.0f} s", file=sys.stderr)
    args.json.write_text(json.dumps({"model": str(args.model), "members": runs}, indent=1))

    base = runs[args.members[0]]
    print(f"# Self-ensemble of `{args.model}` (PSNR-Y dB, ONNX through the runner's tiling)\n")
    head = " | ".join(f"{n} members" for n in args.members[1:])
    print(f"| set | scale | LR | bicubic | 1 member | {head} |")
    print("| --- | --- | --- | --- | --- |" + " --- |" * len(args.members[1:]))
    for i, row in enumerate(base["results"]):
        psnrs = [runs[n]["results"][i]["sr"]["psnr"] for n in args.members[1:]]
        gains = " | ".join(f"{p:.2f} ({p - row['sr']['psnr']:+.2f})" for p in psnrs)
        print(f"| {row['dataset']} | x{row['scale']} | {row['degradation']} | {row['bicubic']['psnr']:.2f} | "
              f"{row['sr']['psnr']:.2f} | {gains} |")  # fmt: skip
    times = ", ".join(f"{n} members {runs[n]['seconds']:.0f} s" for n in args.members)
    print(f"\nTime per run: {times} (the whole probe, NIQE included, on a CPU shared with a training).")


if __name__ == "__main__":
    main()
