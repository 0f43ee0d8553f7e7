"""What every training run keeps in its folder besides the model: optimizer and step state (to
resume), metrics as JSONL and the curves drawn from them. Shared by the tokenizer and transformer
trainers; each writes its own model file and draws its own panels."""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

# Knobs the command line may change, also when resuming.
OVERRIDABLE = ("batch_size", "lr")


def knobs_from(base: dict, args) -> dict:
    """`base` knobs (the preset's, or the resumed run's) with --batch-size / --lr where given."""
    return dict(base) | {k: getattr(args, k) for k in OVERRIDABLE if getattr(args, k)}


def saved_state(out: Path, resume: bool) -> dict | None:
    """The state to resume from, or None for a new run; refuses to resume nothing or to overwrite a run."""
    exists = (out / "state.json").exists()
    if resume and not exists:
        sys.exit(f"--resume: no checkpoint in {out}")
    if not resume and exists:
        sys.exit(f"{out} already holds a run: pass --resume or choose another --out")
    return json.loads((out / "state.json").read_text()) if resume else None


def load_optimizer_state(opt: torch.optim.Optimizer, out: Path, device: str | torch.device = "cpu") -> None:
    if (out / "optim.pt").exists():
        opt.load_state_dict(torch.load(out / "optim.pt", weights_only=True, map_location=device))
    else:  # committed checkpoints keep the weights only; AdamW's moments rebuild in a few steps
        print(f"--resume: no optim.pt in {out}; the optimizer starts afresh", flush=True)


def save_training_state(out: Path, opt: torch.optim.Optimizer, state: dict) -> None:
    """optim.pt and state.json, each replaced atomically so a kill never leaves half a file."""
    torch.save(opt.state_dict(), out / "optim.pt.tmp")
    os.replace(out / "optim.pt.tmp", out / "optim.pt")
    (out / "state.json.tmp").write_text(json.dumps(state, indent=2))
    os.replace(out / "state.json.tmp", out / "state.json")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_curves(out: Path, draw: Callable[[list[dict], list], None]) -> None:
    """curves.png: three panels over the run's metrics.jsonl, drawn by `draw(rows, axes)`."""
    rows = read_metrics(out / "metrics.jsonl")
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    draw(rows, axes)
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


def periodic(step: int, *saves: Callable[[], None]) -> None:
    """Runs the periodic saves; a failure (full disk, a package reinstalled under a running job) is
    reported and retried next period instead of killing hours of training."""
    try:
        for save in saves:
            save()
    except Exception as e:  # noqa: BLE001
        print(f"warning: checkpoint at step {step} failed: {e!r}", flush=True)
